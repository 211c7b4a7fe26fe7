"""The 'when does MTL help' study: task pairs, training engine, meta-features, meta-model, advisor."""
