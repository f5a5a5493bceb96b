"""The review core: contract, routing, slicing, checks, synthesis and the reviewer backends."""
