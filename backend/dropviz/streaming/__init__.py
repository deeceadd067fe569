"""The live stream: the binary frame format and the per-client fan-out."""
