"""Title attributes: text normalisation, the lexicon, conflicts and product numbers (품번).

Plain Python, no Django. Titles are untrusted text; nothing here evaluates or renders them.

- lexicon.py: normalising a title and the attribute values, seasons and years the lexicon finds in it;
- conflicts.py: why a listing cannot be our SKU as titled, and where on a person its garment sits;
- product_numbers.py: product numbers parsed from the catalogue and titles, and compared.
"""
from matcher.pipeline.attributes.conflicts import (
    GARMENT_FAMILY,
    GARMENT_REGION,
    GROUP_LABELS,
    Conflict,
    conflicts,
    find_conflicts,
    garment_region_kind,
)
from matcher.pipeline.attributes.lexicon import (
    DEFAULT_FLAG_GROUPS,
    DEFAULT_FLAG_VALUES,
    DEFAULT_LEXICON_PATH,
    IGNORE_VALUE,
    Attributes,
    AttributeTerms,
    Lexicon,
    LexiconEntry,
    extract,
    extract_with_terms,
    normalise,
)
from matcher.pipeline.attributes.product_numbers import (
    PRODUCT_NUMBER_MIN_LENGTH,
    PRODUCT_NUMBER_SUFFIX_TOLERANCE,
    ProductNumber,
    ProductNumberOutcome,
    compare_product_numbers,
    extract_product_numbers,
    normalise_product_number,
    ocr_fold,
    parse_product_number,
)

__all__ = [
    "DEFAULT_FLAG_GROUPS",
    "DEFAULT_FLAG_VALUES",
    "DEFAULT_LEXICON_PATH",
    "GARMENT_FAMILY",
    "GARMENT_REGION",
    "GROUP_LABELS",
    "IGNORE_VALUE",
    "PRODUCT_NUMBER_MIN_LENGTH",
    "PRODUCT_NUMBER_SUFFIX_TOLERANCE",
    "AttributeTerms",
    "Attributes",
    "Conflict",
    "Lexicon",
    "LexiconEntry",
    "ProductNumber",
    "ProductNumberOutcome",
    "compare_product_numbers",
    "conflicts",
    "extract",
    "extract_product_numbers",
    "extract_with_terms",
    "find_conflicts",
    "garment_region_kind",
    "normalise",
    "normalise_product_number",
    "ocr_fold",
    "parse_product_number",
]
