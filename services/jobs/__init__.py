"""Jobs: a batch's status and its signed callbacks."""
