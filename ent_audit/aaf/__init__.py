"""Reading AAF extractions: names, the declarative schema, the hardened reader, typed frames,
safe archive extraction, the ``Snapshot`` and the one definition of who belongs where."""
