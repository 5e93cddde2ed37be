"""qtrain host tools: build helpers, target runner, golden model, data tools."""
