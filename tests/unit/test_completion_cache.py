from covey_server.completion_cache import CompletionCache

DOC = "def total(items):\n    return \n\nprint(total([1]))\n"
CURSOR = DOC.index("return ") + len("return ")
SUGGESTION = "sum(item.price for item in items)"


def served() -> CompletionCache:
    cache = CompletionCache()
    cache.remember("inline:a.py", "a.py", 3, DOC, CURSOR, SUGGESTION, "call-1")
    return cache


def typed(chars: str) -> str:
    return DOC[:CURSOR] + chars + DOC[CURSOR:]


def test_typing_the_suggestion_serves_the_rest_without_a_request():
    cache = served()
    hit = cache.lookup("inline:a.py", 4, typed("sum("), CURSOR + 4)
    assert hit is not None and hit.text == "item.price for item in items)"
    assert hit.call_id == "call-1" and hit.typed == 4
    assert (cache.hits, cache.misses) == (1, 0)


def test_asking_again_at_the_same_version_and_position_repeats_the_answer():
    hit = served().lookup("inline:a.py", 3, DOC, CURSOR)
    assert hit is not None and hit.text == SUGGESTION and hit.typed == 0


def test_typing_something_else_is_a_miss():
    cache = served()
    assert cache.lookup("inline:a.py", 4, typed("max("), CURSOR + 4) is None
    assert (cache.hits, cache.misses) == (0, 1)


def test_an_edit_elsewhere_is_a_miss():
    edited = typed("sum(").replace("print(total", "print(totl")
    assert served().lookup("inline:a.py", 5, edited, CURSOR + 4) is None


def test_an_edit_before_the_anchor_is_a_miss_even_when_the_typed_text_matches():
    # a character removed above and two typed: the length and the typed text look right,
    # but the text the model saw before the anchor is not there any more
    text = typed("xs").replace("def total", "def totl", 1)
    assert text[CURSOR:CURSOR + 1] == SUGGESTION[0] and len(text) == len(DOC) + 1
    assert served().lookup("inline:a.py", 5, text, CURSOR + 1) is None


def test_a_new_version_at_the_same_position_asks_the_model():
    text = DOC.replace("items)", "things)", 1)
    assert served().lookup("inline:a.py", 4, text, text.index("return ") + 7) is None


def test_typing_the_whole_suggestion_or_moving_back_is_a_miss():
    cache = served()
    assert cache.lookup("inline:a.py", 9, typed(SUGGESTION), CURSOR + len(SUGGESTION)) is None
    assert cache.lookup("inline:a.py", 3, DOC, CURSOR - 1) is None


def test_an_empty_suggestion_forgets_the_entry_and_kinds_are_separate():
    cache = served()
    assert cache.lookup("completion:a.py", 3, DOC, CURSOR) is None
    cache.remember("inline:a.py", "a.py", 4, DOC, CURSOR, "", "call-2")
    assert cache.lookup("inline:a.py", 3, DOC, CURSOR) is None
