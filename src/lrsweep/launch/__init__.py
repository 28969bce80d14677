"""Launching a sweep on a cluster: the wheel and config staged on S3, an EMR cluster or step, the rehearsal."""
