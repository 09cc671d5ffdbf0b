"""Listing media as MLSs and portals speak it: RESO Media fields (media.py), the RESO feed served
(reso.py), compliance profiles (compliance.py), import by URL (imports.py, through
services/infra/fetch.py) and replication of a RESO Media feed (feed.py)."""
