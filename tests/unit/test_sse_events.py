"""The event splitter cuts a byte stream into the events its separator pattern says, however
the bytes arrive and whichever line endings they use."""

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from proxy.call.sse import EVENT_END, EventSplitter


def events_by_pattern(data: bytes) -> tuple[list[bytes], bytes]:
    """The reference: every complete event the separator pattern finds, and the rest."""
    events, start = [], 0
    for match in EVENT_END.finditer(data):
        events.append(data[start : match.end()])
        start = match.end()
    return events, data[start:]


@given(
    st.lists(st.sampled_from([b"d", b":", b" ", b"\n", b"\r", b"\n\n", b"\r\n"])).map(b"".join),
    st.lists(st.integers(min_value=0), max_size=8),
)
def test_events_are_those_the_separator_pattern_finds_however_the_bytes_are_cut(
    data: bytes, cuts: list[int]
) -> None:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    splitter = EventSplitter()
    events = [event for a, b in pairwise(points) for event in splitter.feed(data[a:b])]
    assert (events, splitter.flush()) == events_by_pattern(data)
