"""The suite's state is O(window): 200k records leave it no bigger than 20k did."""

from itertools import islice

from streams import StreamSpec, healthy_stream

from distill_doctor.detectors import DetectorSuite


def state_size(obj, seen=None) -> int:
    """Elements held in containers reachable from a detector's attributes."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type(None))):
        return 0
    seen.add(id(obj))
    if isinstance(obj, dict):
        return len(obj) + sum(state_size(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)) or type(obj).__name__ == "deque":
        return len(obj) + sum(state_size(v, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        return sum(state_size(v, seen) for v in vars(obj).values())
    return 0


def test_state_stops_growing():
    faults = {"loss_spike": 30_000, "grad_explosion": 50_000, "memory_pressure": 150_000}
    spec = StreamSpec(steps=200_000, eval_every=1000, faults=faults, noise=0.05)
    records = healthy_stream(spec)
    suite = DetectorSuite()
    for record in islice(records, 20_000):
        suite.update(record)
    sizes_at_20k = {type(d).__name__: state_size(d) for d in suite.detectors}
    for record in records:
        suite.update(record)
    sizes_at_200k = {type(d).__name__: state_size(d) for d in suite.detectors}
    # 10x the records: state that grew with the stream would be ~10x too. loss-flat's buckets
    # cycle between 40 and 80 as they merge, hence the factor 2.
    for name, size in sizes_at_200k.items():
        assert size <= 2 * sizes_at_20k[name] + 5, (name, sizes_at_20k[name], size)
    assert sum(sizes_at_200k.values()) < 2_000
