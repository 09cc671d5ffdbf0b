"""Lifted photos and takedowns: perceptual hashes of every processed image, reuse findings
across listings, the takedown blocklist (docs/operations.md "Takedowns and reuse")."""
