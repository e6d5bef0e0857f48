"""Title attributes, conflicts and product numbers (품번): plain Python, no database."""
from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.pipeline.attributes import (
    Lexicon,
    ProductNumber,
    compare_product_numbers,
    conflicts,
    extract,
    extract_product_numbers,
    extract_with_terms,
    find_conflicts,
    garment_region_kind,
    normalise,
    normalise_product_number,
    parse_product_number,
)


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load()


def to_fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c) for c in text)


# --- normalisation -------------------------------------------------------------------------


def test_spacing_width_and_case_variants_normalise_alike():
    assert normalise("구스 다운") == normalise("구스다운") == "구스다운"
    assert normalise("ＫＩＤＳ") == normalise("kids") == normalise("Kids") == "kids"
    assert normalise("B급·전시-상품!") == "b급전시상품"


separators = st.sampled_from([" ", "  ", "-", "_", ".", "/", "(", ")", "[", "]", "·", "\u3000", "!", ","])
words = st.text(alphabet=st.sampled_from(list("구스다운패딩키즈덕웰론기모ABCdefXYZ0123456789")), min_size=1, max_size=8)


@given(st.lists(words, min_size=1, max_size=5), st.lists(separators, min_size=5, max_size=5))
def test_separators_never_change_the_normal_form(parts, seps):
    joined_plain = "".join(parts)
    joined_spaced = "".join(p + s for p, s in zip(parts, seps))
    assert normalise(joined_spaced) == normalise(joined_plain)


@given(st.text(max_size=40))
def test_normalising_is_idempotent(text):
    assert normalise(normalise(text)) == normalise(text)


@given(st.text(alphabet=string.ascii_letters + string.digits + " -_.", max_size=30))
def test_fullwidth_and_case_are_ignored(text):
    assert normalise(to_fullwidth(text)) == normalise(text.upper()) == normalise(text.lower())


# --- extraction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    ["키즈 구스다운 패딩", "키즈 구스 다운 패딩", "ＫＩＤＳ 구스다운 패딩", "kids 구스-다운 패딩", "[KIDS]구스다운패딩", "Kids/구스 다운/패딩"],
)
def test_the_same_title_written_differently_gives_the_same_attributes(title, lexicon):
    assert extract(title, lexicon) == {"audience": {"kids"}, "material": {"goose_down"}, "garment": {"jacket"}}


def test_longer_terms_win_and_consume_their_characters(lexicon):
    # "women" must not also count as "men"; "맨투맨" is a sweatshirt, not the audience "맨".
    assert extract("Women's Jacket", lexicon)["audience"] == {"women"}
    assert "audience" not in extract("오버핏 맨투맨", lexicon)
    assert extract("오버핏 맨투맨", lexicon)["garment"] == {"sweatshirt"}
    # "셔츠" (a shirt) inside "티셔츠" and "스웨트셔츠" is not a shirt.
    assert extract("그래픽 반팔 티셔츠", lexicon)["garment"] == {"tshirt"}
    assert extract("프린팅 스웨트셔츠", lexicon)["garment"] == {"sweatshirt"}
    assert extract("T-shirt", lexicon)["garment"] == {"tshirt"}
    # 솜털 is down, not the synthetic filling 솜; 베스트셀러 is a best-seller, not a vest.
    assert extract("구스 솜털 90%", lexicon)["material"] == {"goose_down"}
    assert "garment" not in extract("베스트셀러 인기상품", lexicon)
    assert extract("패딩 조끼", lexicon)["garment"] == {"vest"}


def test_a_returns_policy_is_not_a_returned_item(lexicon):
    # Shop banners promise "무료반품" (free returns); "반품" alone marks a returned, resold item.
    for banner in ("BEST ★ 인기상품 ★ 무료반품", "교환/반품 안내", "반품 배송비 3,000원", "반품 가능"):
        assert "condition" not in extract(banner, lexicon), banner
    assert extract("반품 상품 특가", lexicon)["condition"] == {"refurb"}
    # Non-returnable is a different offer: a flag like the others, so it blocks an automatic match.
    assert extract("B급 ★ 반품불가", lexicon)["condition"] == {"refurb", "final_sale"}
    # OCR often keeps only the start of 해외배송 on a banner.
    assert extract("해외배 ★ 정품", lexicon)["shipping"] == {"overseas"}


def test_latin_terms_must_stand_as_words(lexicon):
    # "jr" inside a product number is not the junior size range.
    assert "audience" not in extract("NJ1JR55 다운", lexicon)
    assert extract("Jr. 다운 자켓", lexicon)["audience"] == {"kids"}


def test_seasons_and_years_are_read(lexicon):
    attrs = extract("23FW 신상 / F/W 2024", lexicon)
    assert attrs["season"] == {"2023FW", "2024FW"}
    assert attrs["year"] == {"2023", "2024"}


@pytest.mark.parametrize(
    ("read", "season"),
    [("무료배송 ★ 정품 ★ 2AFW 신상", "2024FW"), ("Z3FW 신상", "2023FW"), ("2A F/W", "2024FW"), ("2OSS", "2020SS")],
)
def test_text_read_from_photos_gets_a_seasons_digits_back(read, season, lexicon):
    assert extract(read, lexicon, ocr=True)["season"] == {season}
    assert "season" not in extract(read, lexicon)  # a title is taken as written


@pytest.mark.parametrize("read", ["AAFW", "ABFW 신상", "12AFW", "BEST 24[", "2A 신상"])
def test_look_alike_letters_need_a_digit_beside_them_and_a_season_after(read, lexicon):
    assert "season" not in extract(read, lexicon, ocr=True)


def test_garment_tells_where_to_read_colour(lexicon):
    assert garment_region_kind(extract("경량 패딩 점퍼", lexicon)) == "upper"
    assert garment_region_kind(extract("와이드 슬랙스", lexicon)) == "lower"
    assert garment_region_kind(extract("원피스", lexicon)) == "outfit"
    assert garment_region_kind(extract("니트 + 슬랙스 세트", lexicon)) is None


# --- conflicts -------------------------------------------------------------------------------


def test_different_values_of_one_group_conflict(lexicon):
    ours = extract("남성 구스다운 자켓 블랙", lexicon)
    reasons = conflicts(ours, extract("남성 덕다운 자켓 블랙", lexicon), lexicon)
    assert len(reasons) == 1 and "goose_down" in reasons[0] and "duck_down" in reasons[0]


def test_each_value_keeps_the_words_that_named_it(lexicon):
    attrs, terms = extract_with_terms("남성 GOOSE Down 구스다운 자켓 24FW", lexicon)
    assert attrs == extract("남성 GOOSE Down 구스다운 자켓 24FW", lexicon)
    assert set(terms) == {(group, value) for group, values in attrs.items() for value in values}
    assert "구스다운" in terms[("material", "goose_down")]
    assert terms[("season", "2024FW")] == ["24FW"]


@settings(max_examples=200, deadline=None)
@given(title=st.text(alphabet="구스덕다운키즈남성여성 리퍼자켓FWS2405-", max_size=30), other=st.text(max_size=20))
def test_extracting_with_terms_gives_the_same_attributes(title, other, lexicon):
    assert extract_with_terms(title + other, lexicon)[0] == extract(title + other, lexicon)


def test_found_conflicts_are_the_reasons_with_the_values_that_made_them(lexicon):
    ours = extract("남성 구스다운 자켓", lexicon)
    theirs = extract("[해외배송] 남성 덕다운 자켓", lexicon)
    found = find_conflicts(ours, theirs, lexicon)
    assert [c.reason for c in found] == conflicts(ours, theirs, lexicon)
    by_group = {c.group: c for c in found}
    assert by_group["material"].ours == {"goose_down"} and by_group["material"].theirs == {"duck_down"}
    assert by_group["shipping"].ours == frozenset() and by_group["shipping"].theirs == {"overseas"}


def test_a_flag_only_the_listing_names_is_a_conflict(lexicon):
    ours = extract("구스다운 자켓", lexicon)
    assert any("refurb" in r for r in conflicts(ours, extract("구스다운 자켓 B급 스크래치", lexicon), lexicon))
    assert any("overseas" in r for r in conflicts(ours, extract("[해외배송] 구스다운 자켓", lexicon), lexicon))
    assert any("kids" in r for r in conflicts(ours, extract("키즈 구스다운 자켓", lexicon), lexicon))


def test_shared_values_and_unnamed_groups_do_not_conflict(lexicon):
    ours = extract("남성 구스다운 자켓 블랙", lexicon)
    assert conflicts(ours, extract("구스 다운 패딩 자켓 블랙/네이비 택1", lexicon), lexicon) == []
    assert conflicts(ours, extract("다운 자켓", lexicon), lexicon) == []
    # Our own flags are no conflict when the listing names them too.
    kids = extract("키즈 패딩", lexicon)
    assert conflicts(kids, extract("KIDS 패딩", lexicon), lexicon) == []


def test_one_term_can_name_a_garment_and_its_sleeves(lexicon):
    assert extract("로고 반팔티", lexicon) == {"garment": {"tshirt"}, "sleeve": {"short"}}
    assert extract("무지 긴팔 티셔츠", lexicon) == {"garment": {"tshirt"}, "sleeve": {"long"}}
    rows = [
        {"group": "garment", "value": "tshirt", "term": "반팔티"},
        {"group": "sleeve", "value": "short", "term": "반팔티"},
        {"group": "garment", "value": "tshirt", "term": "티"},
    ]
    assert extract("반팔티", Lexicon.from_rows(rows)) == {"garment": {"tshirt"}, "sleeve": {"short"}}


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        # Our printed T-shirt against a sweatshirt or a hoodie with the same print: a common copy.
        ("그래픽 반팔 티셔츠", "그래픽 맨투맨"),
        ("프린팅 티셔츠", "로고 후드티"),
        ("로고 맨투맨 스웨트셔츠", "레터링 후디"),
        ("그래픽 후드 스웨트셔츠", "프린팅 맨투맨"),
        ("케이블 니트", "케이블 가디건"),
        ("옥스포드 셔츠", "오버핏 반팔 티셔츠"),
        ("그래픽 반팔 티셔츠", "그래픽 긴팔 티셔츠"),
        ("구스다운 숏패딩", "구스다운 패딩 베스트"),
    ],
)
def test_different_kinds_of_top_conflict(ours, theirs, lexicon):
    assert conflicts(extract(ours, lexicon), extract(theirs, lexicon), lexicon), (ours, theirs)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("상의 > 반팔티셔츠 그래픽 반팔 티셔츠", "basic top"),  # the broad "top" agrees with any top
        ("그래픽 반팔 티셔츠", "상의 로고 티"),
        ("로고 맨투맨", "맨투맨 스웨트셔츠"),
        ("스크립트 로고 후드티", "Script logo hoodie"),
        ("오버핏 반팔", "오버핏 맨투맨"),  # a sleeve alone names no garment
    ],
)
def test_the_same_kind_of_top_or_a_broader_word_does_not_conflict(ours, theirs, lexicon):
    assert conflicts(extract(ours, lexicon), extract(theirs, lexicon), lexicon) == [], (ours, theirs)


def test_a_broad_word_beside_a_kind_does_not_hide_a_different_kind(lexicon):
    ours = extract("상의 > 반팔티셔츠 그래픽 반팔 티셔츠", lexicon)
    assert ours["garment"] == {"top", "tshirt"}
    assert conflicts(ours, extract("상의 그래픽 맨투맨", lexicon), lexicon)


def test_every_kind_of_top_is_read_on_the_upper_body(lexicon):
    for title in ("반팔 티셔츠", "맨투맨", "후드티", "니트", "가디건", "셔츠", "나시", "top"):
        assert garment_region_kind(extract(title, lexicon)) == "upper", title


# --- product numbers -------------------------------------------------------------------------


def test_product_numbers_normalise_and_tolerate_a_colour_suffix():
    assert normalise_product_number(" nj1-dn.55_a ") == "NJ1DN55A"
    assert parse_product_number("NJ1DN55A-BLK") == ProductNumber("NJ1DN55A", "black")
    assert parse_product_number("ｎｊ１ｄｎ５５ａ") == ProductNumber("NJ1DN55A", None)


def test_product_numbers_are_found_in_titles_but_specs_and_sizes_are_not():
    assert extract_product_numbers("노스페이스NJ1DN55A 눕시 800FP 100(L) 2XL 23FW 129,000원") == [
        ProductNumber("NJ1DN55A", None)
    ]
    assert extract_product_numbers("나이키 DQ4856-010 에어") == [ProductNumber("DQ4856010", None)]


def test_product_number_comparison():
    ours = [parse_product_number("NJ1DN55A-BLK")]
    assert compare_product_numbers(ours, extract_product_numbers("NJ1DN55A 눕시")) == "match"
    assert compare_product_numbers(ours, extract_product_numbers("NJ1DN55A-BLK 눕시")) == "match"
    assert compare_product_numbers(ours, extract_product_numbers("NJ1DN55A-WHT 눕시")) == "mismatch"
    assert compare_product_numbers(ours, extract_product_numbers("NJ1DN56B 눕시")) == "mismatch"
    assert compare_product_numbers(ours, extract_product_numbers("눕시 패딩")) == "absent"
    assert compare_product_numbers([], extract_product_numbers("NJ1DN55A")) == "absent"
    # An unrelated short code is not evidence against a long product number.
    assert compare_product_numbers([parse_product_number("32YE362009")], extract_product_numbers("AB123 세트")) == "absent"


def test_ocr_look_alikes_match_only_when_asked():
    read = extract_product_numbers("NJIDN55A")  # Tesseract read 1 as I
    ours = [parse_product_number("NJ1DN55A")]
    assert compare_product_numbers(ours, read, ocr_tolerant=True) == "match"
    assert compare_product_numbers(ours, read) == "mismatch"


codes = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=4).flatmap(
    lambda letters: st.text(alphabet=string.digits, min_size=3, max_size=5).map(lambda digits: letters + digits)
)


@given(codes, st.lists(st.sampled_from(["-", "_", ".", " ", ""]), min_size=8, max_size=8), st.booleans())
@settings(max_examples=200)
def test_a_product_number_survives_separators_case_and_width(code, seps, fullwidth):
    written = "".join(c + s for c, s in zip(code, seps + [""] * len(code))).strip(" ")
    written = written.lower() if seps[0] == "" else written
    if fullwidth:
        written = unicodedata.normalize("NFC", to_fullwidth(written))
    assert normalise_product_number(written) == code
    parsed = parse_product_number(written)
    assert parsed is not None and parsed.code == code
    assert compare_product_numbers([parse_product_number(code)], [parsed]) == "match"


@given(codes, st.sampled_from(["BLK", "WHT", "NVY", "GREY"]), st.sampled_from(["-", "_", "."]))
def test_a_colour_suffix_on_one_side_still_matches(code, suffix, sep):
    title = f"신상 {code}{sep}{suffix} 점퍼"
    assert compare_product_numbers([parse_product_number(code)], extract_product_numbers(title)) == "match"
