"""Labels as datasets publish them: each file read once into facts (facts.py), the dataset's format judged over
all of them (formats.py, with grey.py, palette.py, colour.py and judgement.py), colours as numbers (colour_masks.py),
and voc_annotation.py --fix writing the conversions (fix.py)."""
