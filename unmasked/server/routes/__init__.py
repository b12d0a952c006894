"""The REST routes, one module per group: fill (inpaint) and faces (unmask, synthetic masks)."""
