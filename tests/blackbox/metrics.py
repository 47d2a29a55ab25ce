"""The one reader of gcs's /metrics page for the black-box tests.

The Prometheus client library's text parser checks the page's format as a
whole, but it renames a counter's samples (io_gathering_remote_configuration
becomes ..._total), so the series are read here with their names as written.
A series is found by its name and its exact labels."""
import re
import time

from prometheus_client.parser import text_string_to_metric_families

_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse(text):
    """{(name, frozenset(labels.items())): value} from a Prometheus text page,
    series names exactly as written. Fails on a page the library refuses, on
    a line that is not a sample and on a series given twice."""
    list(text_string_to_metric_families(text))
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.fullmatch(line)
        assert m, "not a Prometheus sample line: %r" % line
        name, body, value = m.groups()
        labels = {}
        pos = 0
        while body and pos < len(body):
            lm = _LABEL.match(body, pos)
            assert lm, "bad labels in %r" % line
            labels[lm.group(1)] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1),
                                         lm.group(2))
            pos = lm.end()
        key = (name, frozenset(labels.items()))
        assert key not in out, "duplicate series %r" % line
        out[key] = float(value)
    return out


def scrape(srv):
    """The parsed /metrics of srv (anything whose get(path) returns
    (status, headers, body); a GcsServer on its metrics listener); fails
    unless it answers 200."""
    status, _, body = srv.get_metrics() if hasattr(srv, "get_metrics") else srv.get("/metrics")
    assert status == 200, "/metrics: HTTP %s" % status
    return parse(body.decode())


def value(samples, name, **labels):
    """The value of the series name{labels} (exactly those labels), or None."""
    return samples.get((name, frozenset(labels.items())))


def total(samples, name, **labels):
    """The sum of name's series carrying labels (and maybe others), or None
    when there is none."""
    values = [v for (n, ls), v in samples.items()
              if n == name and all(dict(ls).get(k) == w for k, w in labels.items())]
    return sum(values) if values else None


def read(srv, name, **labels):
    """value() of one series on a fresh scrape of srv."""
    return value(scrape(srv), name, **labels)


def wait_for(srv, name, value, timeout, **labels):
    """Reads srv's /metrics until the series name{labels} is value; fails
    after timeout seconds."""
    deadline = time.time() + timeout
    while read(srv, name, **labels) != value:
        assert time.time() < deadline, "%s never became %s in %s s: %s" % (
            name, value, timeout, read(srv, name, **labels))
        time.sleep(0.1)
