"""PDF text extraction per page vs pypdf's own extract_text on the same file (target <= 1.2).

Both sides open the same twelve-page pdfLaTeX report (`tests/fixtures/documents/report.pdf`)
from bytes in memory, in the same process, alternately, `DOCUMENT_BENCH_RUNS` times
(default 21): pypdf's side is `PdfReader` and `extract_text()` on every page; ours is
`read_pdf` (the same, plus cleaning each text, the check for image-only pages and the
text budget) and `stored_text`. Figures are CPU time, medians; the ratio is ours / pypdf's.
The Office readers' times on the sample files are printed for reference.
"""

from __future__ import annotations

import io
import os
import statistics
import time
from pathlib import Path

from pypdf import PdfReader

from agentfiles.media.documents import DOCX, PPTX, XLSX, read_document, read_pdf, stored_text

RUNS = int(os.environ.get("DOCUMENT_BENCH_RUNS", "21"))
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "documents"
TARGET = 1.2


def _cpu(call) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


def _pypdf(data: bytes) -> None:
    reader = PdfReader(io.BytesIO(data))
    for page in reader.pages:
        page.extract_text()


def _ours(data: bytes) -> None:
    stored_text(read_pdf(data))


def run() -> None:
    data = (FIXTURES / "report.pdf").read_bytes()
    pages = len(PdfReader(io.BytesIO(data)).pages)
    _pypdf(data), _ours(data)  # warm: imports, font maps
    theirs, ours = [], []
    for _ in range(RUNS):
        theirs.append(_cpu(lambda: _pypdf(data)))
        ours.append(_cpu(lambda: _ours(data)))
    their_page = statistics.median(theirs) / pages
    our_page = statistics.median(ours) / pages
    ratio = our_page / their_page
    print(f"   report.pdf: {pages} pages, {len(data)} bytes, {RUNS} runs each, CPU time medians")
    print(f"   pypdf extract_text      {their_page * 1000:7.2f} ms per page")
    print(f"   read_pdf + stored_text  {our_page * 1000:7.2f} ms per page")
    print(f"   ratio {ratio:.3f} (target <= {TARGET}): {'met' if ratio <= TARGET else 'MISSED'}")
    for name, media_type in (("letter.docx", DOCX), ("budget.xlsx", XLSX), ("slides.pptx", PPTX)):
        office = (FIXTURES / name).read_bytes()
        times = [
            _cpu(lambda office=office, media_type=media_type: read_document(office, media_type))
            for _ in range(RUNS)
        ]
        print(f"   {name:12s} read in {statistics.median(times) * 1000:6.2f} ms")
