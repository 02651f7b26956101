"""A user's documents as plain text, cut into chunks with stable ids and exact offsets.

Plain text, Markdown, HTML and PDF (text layer only) are read. HTML goes through the
standard library's parser: markup, scripts, styles and comments are dropped and nothing in
a document is ever run. Headings come out Markdown-style (``## Title``) so that chunking
treats every format alike. A chunk is always ``document.text[start:end]``, so its offsets
point back into the text it came from.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from datamill.errors import InputError

log = logging.getLogger(__name__)

TEXT = (".txt", ".text", ".md", ".markdown")
HTML = (".html", ".htm", ".xhtml")
PDF = (".pdf",)
SUPPORTED = TEXT + HTML + PDF


@dataclass(frozen=True)
class Document:
    path: str
    text: str


@dataclass(frozen=True)
class Chunk:
    id: str
    path: str
    start: int
    end: int
    text: str


class _TextExtractor(HTMLParser):
    """The readable text of an HTML page, one block per paragraph, heading or list item."""

    HIDDEN = frozenset(
        {"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object"}
    )
    BLOCKS = frozenset(
        {"p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "ul",
         "ol", "li", "table", "tr", "pre", "blockquote", "br", "hr", "dl", "dt", "dd",
         "figure", "figcaption", "form", "fieldset", "address", "details", "summary"}
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.hidden = 0

    def _break(self, prefix: str = "") -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.blocks.append(text)
        self.current = [prefix]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._break("#" * int(tag[1]) + " ")
        elif tag in self.BLOCKS:
            self._break("- " if tag == "li" else "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS and not self.hidden:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif not self.hidden and (tag in self.BLOCKS or re.fullmatch(r"h[1-6]", tag)):
            self._break()

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.current.append(data)

    def text(self) -> str:
        self._break()
        return "\n\n".join(block for block in self.blocks if block.strip("#- "))


def html_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return parser.text()


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise InputError(str(path), None, None, "the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, OSError, ValueError, KeyError) as e:  # malformed files raise these too
        raise InputError(str(path), None, None, f"unreadable PDF: {e}") from None
    return "\n\n".join(page.strip() for page in pages if page.strip())


def load_document(path: str | Path) -> Document:
    """One document's text; an error names the file if it cannot be read."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise InputError(str(path), None, None, f"unsupported document type; use {SUPPORTED}")
    if suffix in PDF:
        text = _pdf_text(path)
    else:
        try:
            raw = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(
                str(path), None, None, getattr(e, "strerror", None) or str(e)
            ) from None
        text = html_text(raw) if suffix in HTML else raw.replace("\r\n", "\n")
    return Document(path.as_posix(), text)


def expand(patterns: list[str]) -> list[Path]:
    """Files named by paths, directories (searched recursively) and globs, sorted."""
    found: set[Path] = set()
    for pattern in patterns:
        if Path(pattern).is_dir():
            matches = [p for p in Path(pattern).rglob("*") if p.suffix.lower() in SUPPORTED]
        else:
            matches = [Path(p) for p in glob.glob(pattern, recursive=True)]
        if not matches:
            raise InputError(pattern, None, None, "no such document (or no file matches)")
        found.update(p for p in matches if p.is_file())
    return sorted(found)


def load_documents(patterns: list[str]) -> list[Document]:
    """Every readable document; those without text (a scanned PDF…) are skipped, and said so."""
    documents = []
    for path in expand(patterns):
        document = load_document(path)
        if document.text.strip():
            documents.append(document)
        else:
            why = " (a scanned PDF? only a text layer can be read)" if path.suffix == ".pdf" else ""
            log.warning("%s: no text%s; skipped", path, why)
    if not documents:
        raise InputError(", ".join(patterns), None, None, "no document has any text")
    return documents


_TOKEN = re.compile(r"\w+|[^\w\s]")
_PARAGRAPH = re.compile(r"\S(?:.*?\S)??(?=[ \t]*\n\s*\n|\s*\Z)", re.DOTALL)
_HEADING = re.compile(r"#{1,6}\s")


def count_tokens(text: str) -> int:
    """A model-independent token estimate: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def _pieces(text: str, budget: int) -> list[tuple[int, int, bool]]:
    """(start, end, is_heading) of paragraphs, long ones cut into spans of ``budget`` tokens."""
    pieces = []
    for paragraph in _PARAGRAPH.finditer(text):
        heading = bool(_HEADING.match(paragraph.group()))
        tokens = list(_TOKEN.finditer(paragraph.group()))
        base = paragraph.start()
        for i in range(0, len(tokens), budget):
            span = tokens[i : i + budget]
            pieces.append((base + span[0].start(), base + span[-1].end(), heading and i == 0))
    return pieces


def chunk(document: Document, max_tokens: int = 300, overlap: int = 50) -> list[Chunk]:
    """Paragraphs packed into chunks of at most ``max_tokens``, a heading starting a new one.

    Consecutive chunks share up to ``overlap`` tokens of whole paragraphs, so that a fact
    cut by a boundary is still whole in one of them.
    """
    text = document.text
    pieces = _pieces(text, max_tokens)
    sizes = [count_tokens(text[s:e]) for s, e, _ in pieces]
    chunks: list[Chunk] = []
    first = 0
    while first < len(pieces):
        last, total = first, sizes[first]
        while last + 1 < len(pieces) and not pieces[last + 1][2]:
            if total + sizes[last + 1] > max_tokens:
                break
            last += 1
            total += sizes[last]
        start, end = pieces[first][0], pieces[last][1]
        chunks.append(_make(document.path, start, text[start:end]))
        following, shared = last + 1, 0
        if following < len(pieces) and not pieces[following][2]:  # no overlap into a section
            while following - 1 > first and shared + sizes[following - 1] <= overlap:
                following -= 1
                shared += sizes[following]
        first = following
    return chunks


def _make(path: str, start: int, text: str) -> Chunk:
    digest = hashlib.sha256(f"{path}\0{start}\0{text}".encode()).hexdigest()[:16]
    return Chunk(digest, path, start, start + len(text), text)


_FOLD = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " "})
_QUOTE_MARKS = "\"'“”‘’«» \n\t"


def _folded(text: str) -> tuple[str, list[int]]:
    """``text`` case-folded with whitespace runs as one space, and each output char's source."""
    out: list[str] = []
    source: list[int] = []
    for i, char in enumerate(text):
        if char.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                source.append(i)
            continue
        for folded in unicodedata.normalize("NFKC", char).translate(_FOLD).casefold():
            out.append(folded)
            source.append(i)
    return "".join(out), source


def find_quote(quote: str, text: str) -> tuple[int, int] | None:
    """Where ``quote`` occurs in ``text`` as (start, end), ignoring case, spacing and quote
    marks around it; None if it does not occur."""
    needle, _ = _folded(quote.strip(_QUOTE_MARKS).removesuffix("...").removesuffix("…"))
    needle = needle.strip()
    if not needle:
        return None
    haystack, source = _folded(text)
    at = haystack.find(needle)
    if at < 0:
        return None
    return source[at], source[at + len(needle) - 1] + 1
