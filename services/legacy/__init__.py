"""The legacy migration: moving local-disk images into the store, the rehearsal seed, the redirects."""
