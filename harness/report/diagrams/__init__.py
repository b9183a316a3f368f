"""Diagrams as Mermaid text and as SVG drawn here: the saga's spec, and what its traces show.

Every diagram is a small model (`model`), written as Mermaid text (`mermaid.to_text`) and read
back (`mermaid.parse`); the SVG is drawn from the parsed text (`sequence_svg`, `state_svg`), so
the committed ``.mmd`` and ``.svg`` files can never say different things. Why a renderer of
our own rather than Mermaid's: `docs/diagrams/README.md`.
"""
