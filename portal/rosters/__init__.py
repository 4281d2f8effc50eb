"""On-call roster of chairs (ordförandejour): kept by municipalities, acknowledged by the jour."""
