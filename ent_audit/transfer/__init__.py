"""Getting the academy's archives: SFTP connection and fetch (Annexe 2), French working days."""
