"""The pair decision's stages, plain Python: no Django, nothing else of matcher.

- inputs.py: the two sides of a pair (ImageInput, SkuSide, ListingSide).
- analysis.py: per-image analysis (regions, embeddings, colours, keypoints), its cache and binary format.
- evidence/: text.py (conflicts, product numbers), appearance.py (embedding cosine), colour/ (all colour
  code), geometry.py (all keypoint / RANSAC code).
- cutout.py: the background-removal stage of the cascade; cascade.py: when an optional stage (cut-out,
  number OCR, LLM) can still change the bucket; policy.py: DecisionPolicy and decide().
- compare.py: PairComparer, the stages in order; timings.py: stage counts and seconds.
- Stage implementations: detect/ (regions), embed/, segment.py (background removal), ocr/,
  textgate.py, verify/ (the vision LLM call); registry.py loads them by dotted path. Each package
  re-exports its names from `__init__`, so settings keep paths such as "matcher.pipeline.embed.X".
- attributes/: the lexicon, title conflicts and product numbers.

Nothing is re-exported here: `import matcher.pipeline.runtime` must stay light (it is imported first to set
thread settings before numpy or torch load).
"""
