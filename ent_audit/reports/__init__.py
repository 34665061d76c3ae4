"""Reports: the registry, the papermill + nbconvert runner, notebook helpers and templates."""
