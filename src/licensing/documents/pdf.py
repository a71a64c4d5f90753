"""PDF documents: Jinja2 HTML templates rendered by WeasyPrint (SPEC 8).

* The templates ship inside the package, in ``licensing/templates/`` (``document.html``, its
  ``assets/`` and ``mail/``), found with ``importlib.resources`` so that a wheel has them as well
  as an editable install; ``LICENSING_TEMPLATES_DIR`` replaces them. Autoescaping is on, so names
  and descriptions are shown as the text they are.
* The renderer reads only the project's own template assets (and the operator's configured
  logo): ``AssetFetcher`` refuses every other URL, whatever a user wrote, and records what was
  asked for. A ``<link>`` or ``<img>`` smuggled into a description is escaped anyway.
* One ``FontConfiguration`` per process (a new one per render leaks memory, STACK-NOTES), used by
  one render at a time (a lock: Pango and fontconfig are not thread-safe); a
  process pool (``render_many``) for batches: threads add no throughput to WeasyPrint.
* Approved documents are PDF/A-3b with their EN 16931 XML embedded as ``factur-x.xml``
  (profile EN16931), written in WeasyPrint's one pass (``FacturX``): the XML as an attachment
  with the relationship ``Data``, the Factur-X XMP properties and their extension schema merged
  into WeasyPrint's metadata, and a single ``/AF`` entry (WeasyPrint 70 lists its own attachment
  twice, upstream issue 2917). Drafts carry no e-invoice (they have no number yet). The
  ``factur-x`` library embedded it before, by parsing and rewriting the whole PDF with pypdf: an
  eighth of a one-page render (issue 17).
* Every stream is compressed once (``_compress_once``, the finisher's last step): pydyf would
  compress them all again to hash them for a PDF/A's ``/ID``. The restricted fetcher builds no
  urllib opener, and the attachment uses it instead of a default one (half a millisecond each).
"""

from __future__ import annotations

import mimetypes
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import OpenerDirector

import jinja2

from licensing import collector
from licensing.config import Settings, get_settings
from licensing.documents.model import Document
from licensing.money import minor_unit


@lru_cache(maxsize=1)
def package_templates() -> Path:
    """The templates shipped in the package. Jinja2 and WeasyPrint read them as files (the
    assets by ``file://`` URL), so the package must be installed as files, as pip and uv do."""
    resource = files("licensing") / "templates"
    if not isinstance(resource, Path) or not resource.is_dir():
        raise RuntimeError(f"the licensing package has no templates folder on disk ({resource}): reinstall it, or set LICENSING_TEMPLATES_DIR")
    return resource


def templates_dir(settings: Settings | None = None) -> Path:
    """``LICENSING_TEMPLATES_DIR`` when it is set, else the package's own templates."""
    settings = settings or get_settings()
    return Path(settings.templates_dir) if settings.templates_dir else package_templates()


# -- formatting -----------------------------------------------------------------------------


def _money(value: Decimal, currency: str) -> str:
    places = minor_unit(currency)
    return f"{value.quantize(Decimal(1).scaleb(-places)):,.{places}f}"


def _grouped(text: str) -> str:
    """An IBAN or RF reference in groups of four, as printed: ``RF18 5390 0754 7034``."""
    return " ".join(text[index:index + 4] for index in range(0, len(text), 4))


def _credits(value: Decimal) -> str:
    return f"{value:,.2f}"


def _quantity(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text


def _rate(value: Decimal) -> str:
    return f"{value.normalize():f} %"


def _day(value: date) -> str:
    return value.strftime("%d %b %Y").lstrip("0")


def _day_before(value: date) -> str:
    return _day(value - timedelta(days=1))


@lru_cache(maxsize=4)
def environment(directory: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=jinja2.select_autoescape(("html", "xml"), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=_money, credits=_credits, quantity=_quantity, rate=_rate, day=_day, day_before=_day_before, grouped=_grouped,
    )
    return env


def render_html(document: Document, settings: Settings | None = None, *, einvoice: bool = False) -> str:
    settings = settings or get_settings()
    logo = Path(settings.operator_logo).resolve().as_uri() if settings.operator_logo else None
    return environment(templates_dir(settings)).get_template("document.html").render(
        doc=document, logo=logo, zone=settings.timezone, einvoice=einvoice, qr_svg=qr_svg(document.payment_qr)
    )


def qr_svg(payload: str | None) -> str | None:
    """The QR code of ``payload`` as inline SVG (error correction M, as EPC069-12 asks), or None."""
    if payload is None:
        return None
    import segno

    return segno.make(payload, error="m", micro=False, boost_error=False).svg_inline(scale=1, border=4, omitsize=True)


def render_mail(document: Document, settings: Settings | None = None, *, template: str = "document", **context) -> tuple[str, str]:
    """The plain-text and HTML bodies of the mail that carries the document (``template``:
    ``document``, or ``reminder`` with ``days_overdue``)."""
    settings = settings or get_settings()
    env = environment(templates_dir(settings))
    text_env = env.overlay(autoescape=False)
    return (
        text_env.get_template(f"mail/{template}.txt").render(doc=document, **context),
        env.get_template(f"mail/{template}.html").render(doc=document, **context),
    )


# -- fetching ---------------------------------------------------------------------------------


def _fetcher_base():
    from weasyprint.urls import URLFetcher

    return URLFetcher


class AssetFetcher(_fetcher_base()):  # type: ignore[misc]
    """Serves the template assets and the operator's logo, and nothing else. ``requested``
    lists every URL the renderer asked for; ``refused`` those it did not get."""

    def __init__(self, settings: Settings | None = None) -> None:
        # Not URLFetcher's own set-up: it builds urllib's opener (proxies read from the
        # environment, ten handlers: half a millisecond per render) for a ``fetch`` this class
        # replaces. Only its settings are kept, as WeasyPrint reads ``_fail_on_errors``.
        OpenerDirector.__init__(self)
        self._timeout, self._http_headers, self._allowed_protocols, self._request = 10, {}, ("file",), None
        self._fail_on_errors = False
        settings = settings or get_settings()
        self.root = templates_dir(settings).resolve()
        self.logo = Path(settings.operator_logo).resolve() if settings.operator_logo else None
        self.requested: list[str] = []
        self.refused: list[str] = []

    def fetch(self, url, headers=None):
        from weasyprint.urls import URLFetcherResponse

        self.requested.append(url)
        path = self._allowed(url)
        if path is None:
            self.refused.append(url)
            raise ValueError(f"the renderer only reads the project's template assets, not {url}")
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, path.read_bytes(), headers={"Content-Type": mime})

    def _allowed(self, url: str) -> Path | None:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            return None
        path = Path(unquote(parts.path)).resolve()
        if path == self.logo and path.is_file():
            return path
        if path.is_file() and path.is_relative_to(self.root / "assets"):
            return path
        return None


@lru_cache(maxsize=1)
def font_configuration():
    """One per process (STACK-NOTES: a new one per render leaks about 0.22 MiB)."""
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


# -- rendering --------------------------------------------------------------------------------


def html_to_pdf(html: str, *, fetcher: AssetFetcher | None = None, settings: Settings | None = None, pdf_variant: str | None = "pdf/a-3b",
                einvoice: FacturX | None = None) -> bytes:
    """WeasyPrint on an HTML string, with the restricted fetcher, the shared fonts and the parsed
    stylesheet; ``einvoice`` embeds a Factur-X XML (PDF/A-3b only)."""
    from weasyprint import HTML

    settings = settings or get_settings()
    fetcher = fetcher or AssetFetcher(settings)
    base_url = templates_dir(settings).resolve().as_uri() + "/"
    options = {"pdf_variant": pdf_variant} if pdf_variant else {}
    # One render at a time in a process: the shared FontConfiguration, Pango and fontconfig are not
    # thread-safe (a mail sender thread rendering beside a scheduler job corrupted the heap). The
    # cycle collector paused for the render (boxes, styles of a hundred values each) and run once
    # after it: it had run six times a page over what was still alive.
    with _render_lock, collector.paused():
        return _write_pdf(HTML(string=html, base_url=base_url, url_fetcher=fetcher), settings, fetcher, einvoice, options)


def _write_pdf(html, settings: Settings, fetcher: AssetFetcher, einvoice: FacturX | None, options: dict) -> bytes:
    rendering = html.render(stylesheets=document_stylesheet(settings), font_config=font_configuration(), **options)
    if einvoice is None:
        return rendering.write_pdf(finisher=_compress_once, **options)
    einvoice.describe(rendering.metadata)
    return rendering.write_pdf(attachments=[einvoice.attachment(fetcher)], finisher=einvoice.finish, **options)


def _compress_once(_document, pdf) -> None:
    """The last step before WeasyPrint writes the PDF: each stream compressed once. pydyf
    compresses a stream (zlib level 9) every time its bytes are read, and a PDF with an identifier
    (every PDF/A) reads them all twice: once to write them, once more to hash them for the ``/ID``.
    That second pass was a twentieth of a one-page render (issue 17). No stream changes after
    the finisher, so the bytes written and the bytes hashed stay the same."""
    import pydyf

    for pdf_object in pdf.objects:
        if isinstance(pdf_object, pydyf.Stream):
            pdf_object.__class__ = _compressed_once(type(pdf_object))


@lru_cache(maxsize=8)
def _compressed_once(stream_class: type) -> type:
    """``stream_class`` (pydyf's stream or WeasyPrint's, for the pages) with its bytes made once."""
    if getattr(stream_class, "compressed_once", False):
        return stream_class
    read = stream_class.data.fget

    def data(self) -> bytes:
        made = self.__dict__.get("_compressed_once")
        if made is None:
            made = self.__dict__["_compressed_once"] = read(self)
        return made

    return type(f"{stream_class.__name__}CompressedOnce", (stream_class,), {"data": property(data), "compressed_once": True})


def document_stylesheet(settings: Settings) -> list:
    """The templates' ``assets/document.css``, applied to every document (none when the folder has
    no such file). WeasyPrint parses a stylesheet in pure Python, a fifth of a one-page render, so
    it is parsed once per process and per version of the file (path and modification time); its
    own ``url()``s go through the restricted fetcher like everything else."""
    from weasyprint import CSS

    path = (templates_dir(settings) / "assets" / "document.css").resolve()
    try:
        key = (path, path.stat().st_mtime_ns)
    except FileNotFoundError:
        return []
    if key not in _stylesheets:
        _stylesheets.clear()
        _stylesheets[key] = CSS(filename=str(path), url_fetcher=AssetFetcher(settings), font_config=font_configuration())
    return [_stylesheets[key]]


_stylesheets: dict[tuple[Path, int], object] = {}  # filled under _render_lock
_render_lock = threading.Lock()


class FacturX:
    """A Factur-X e-invoice (profile EN 16931) to embed in the PDF/A-3b that WeasyPrint writes."""

    FILE_NAME = "factur-x.xml"
    _XMP = files("licensing.documents") / "factur-x.xmp"

    def __init__(self, xml: bytes, *, title: str, author: str, subject: str) -> None:
        self.xml, self.title, self.author, self.subject = xml, title, author, subject

    def describe(self, metadata) -> None:
        """The PDF's title, author, subject and keywords (its Info and its XMP alike)."""
        metadata.title, metadata.authors, metadata.description = self.title, [self.author], self.subject
        metadata.keywords = ["Factur-X", "EN 16931"]
        metadata.lang = "en-GB"
        metadata.created = metadata.modified = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")

    def attachment(self, fetcher: AssetFetcher):
        from io import BytesIO

        from weasyprint import Attachment

        # With the render's fetcher: WeasyPrint would build a default one (urllib's opener) for a
        # file object it never fetches.
        return Attachment(file_obj=BytesIO(self.xml), name=self.FILE_NAME, description="Factur-X XML file", relationship="Data",
                          url_fetcher=fetcher)

    def finish(self, _document, pdf) -> None:
        """After WeasyPrint's PDF/A pass: one ``/AF`` entry per file, the file's type as Factur-X
        names it, the attachments panel open, and the Factur-X properties in the XMP."""
        import pydyf

        unique = list(dict.fromkeys(pdf.catalog["AF"]))
        pdf.catalog["AF"] = pydyf.Array(unique)
        pdf.catalog["PageMode"] = "/UseAttachments"
        for pdf_object in pdf.objects:
            if isinstance(pdf_object, pydyf.Stream) and pdf_object.extra.get("Type") == "/EmbeddedFile":
                pdf_object.extra["Subtype"] = "/text#2fxml"
            elif isinstance(pdf_object, pydyf.Stream) and pdf_object.extra.get("Type") == "/Metadata":
                pdf_object.stream = [self._merged_xmp(b"".join(_bytes(part) for part in pdf_object.stream))]
        _compress_once(_document, pdf)

    def _merged_xmp(self, xmp: bytes) -> bytes:
        from lxml import etree

        rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
        start, end = xmp.index(b"<x:xmpmeta"), xmp.index(b"</x:xmpmeta>") + len(b"</x:xmpmeta>")
        meta = etree.fromstring(xmp[start:end])
        into = meta.find(f"{rdf}RDF")
        for description in etree.fromstring(self._XMP.read_bytes()).iter(f"{rdf}Description"):
            into.append(description)
        return xmp[:start] + etree.tostring(meta, encoding="utf-8") + xmp[end:]


def _bytes(part) -> bytes:
    return part if isinstance(part, bytes) else str(part).encode()


def render_pdf(document: Document, *, xml: bytes | None = None, fetcher: AssetFetcher | None = None, settings: Settings | None = None) -> bytes:
    """The document's PDF; with ``xml`` (approved documents) a Factur-X PDF/A-3b embedding it."""
    settings = settings or get_settings()
    html = render_html(document, settings, einvoice=xml is not None)
    einvoice = None
    if xml is not None:
        einvoice = FacturX(
            xml, title=f"{document.seller.name}: {document.title} {document.number}", author=document.seller.name,
            subject=f"{document.title} {document.number} of {document.issue_date.isoformat()}",
        )
    return html_to_pdf(html, fetcher=fetcher, settings=settings, einvoice=einvoice)


def _render_in_worker(document: Document, xml: bytes | None) -> bytes:
    return render_pdf(document, xml=xml)


def render_many(items: list[tuple[Document, bytes | None]], *, workers: int | None = None) -> list[bytes]:
    """Render a batch with every core: a spawn-based process pool (fresh processes, one
    FontConfiguration each, recycled after 50 documents to keep memory flat)."""
    if not items:
        return []
    workers = workers or max(1, multiprocessing.cpu_count())
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=50) as pool:
        return list(pool.map(_render_in_worker, *zip(*items, strict=True), chunksize=4))
