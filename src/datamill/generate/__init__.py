"""Synthetic generation: task families, domain packs and personas."""
