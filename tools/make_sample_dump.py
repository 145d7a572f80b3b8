#!/usr/bin/env python3
"""Assembles data/articles/*.wiki into a MediaWiki XML export (pages-articles format, 0.11).

Each .wiki file holds one article: the first line is `TITLE: <title>`, the rest is wikitext.
Besides one main-namespace page per article, the dump gets a few redirect pages and a couple
of pages outside the main namespace (Talk:, Category:) so that ingest filters are exercised.
The output depends only on the input files: same files, same bytes.

    python3 tools/make_sample_dump.py                       # data/articles -> data/sample-pages-articles.xml
    python3 tools/make_sample_dump.py --articles DIR --output FILE [--bz2-multistream]

Standard library only.
"""
import argparse
import bz2
import hashlib
import pathlib
import sys
from xml.sax.saxutils import escape, quoteattr

EXPORT_NS = "http://www.mediawiki.org/xml/export-0.11/"
TIMESTAMP = "2026-01-01T00:00:00Z"
NAMESPACES = [
    (-2, "Media"), (-1, "Special"), (0, ""), (1, "Talk"), (2, "User"), (3, "User talk"),
    (4, "Wikipedia"), (5, "Wikipedia talk"), (6, "File"), (7, "File talk"),
    (10, "Template"), (11, "Template talk"), (14, "Category"), (15, "Category talk"),
]
REDIRECT_COUNT = 3          # redirect pages, one each for the first articles in title order
PAGES_PER_BZ2_STREAM = 100  # as in Wikimedia's multistream dumps


def read_article(path):
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        sys.exit(f"{path}: byte {e.start} is not UTF-8 (save the file as UTF-8)")
    first, _, body = text.partition("\n")
    if not first.startswith("TITLE:") or not first[len("TITLE:"):].strip():
        sys.exit(f"{path}:1: first line must be 'TITLE: <title>'")
    return first[len("TITLE:"):].strip(), body.strip("\n") + "\n"


def mediawiki_sha1(text):
    """Revision sha1 as MediaWiki stores it: SHA-1 of the UTF-8 text in base 36, 31 digits."""
    n = int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest(), "big")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(31, "0")


def page_xml(page_id, ns, title, text, redirect_to=None):
    body = escape(text, {'"': "&quot;"})
    lines = [
        "  <page>",
        f"    <title>{escape(title)}</title>",
        f"    <ns>{ns}</ns>",
        f"    <id>{page_id}</id>",
    ]
    if redirect_to is not None:
        lines.append(f"    <redirect title={quoteattr(redirect_to)} />")
    lines += [
        "    <revision>",
        f"      <id>{page_id * 10 + 1}</id>",
        f"      <timestamp>{TIMESTAMP}</timestamp>",
        "      <contributor>",
        "        <username>lvmflow</username>",
        "        <id>1</id>",
        "      </contributor>",
        "      <model>wikitext</model>",
        "      <format>text/x-wiki</format>",
        f'      <text bytes="{len(text.encode("utf-8"))}" xml:space="preserve">{body}</text>',
        f"      <sha1>{mediawiki_sha1(text)}</sha1>",
        "    </revision>",
        "  </page>",
    ]
    return "\n".join(lines) + "\n"


def header_xml():
    ns_lines = []
    for key, name in NAMESPACES:
        case = "first-letter"
        if name:
            ns_lines.append(f'      <namespace key="{key}" case="{case}">{escape(name)}</namespace>')
        else:
            ns_lines.append(f'      <namespace key="{key}" case="{case}" />')
    return "\n".join([
        f'<mediawiki xmlns="{EXPORT_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{EXPORT_NS} http://www.mediawiki.org/xml/export-0.11.xsd" '
        'version="0.11" xml:lang="en">',
        "  <siteinfo>",
        "    <sitename>lvmflow sample wiki</sitename>",
        "    <dbname>lvmflowwiki</dbname>",
        "    <base>https://example.org/wiki/Main_Page</base>",
        "    <generator>lvmflow tools/make_sample_dump.py</generator>",
        "    <case>first-letter</case>",
        "    <namespaces>",
        *ns_lines,
        "    </namespaces>",
        "  </siteinfo>",
    ]) + "\n"


def redirect_title(title):
    variant = title.title() if title.title() != title else title.lower()
    return variant if variant != title else title + " (redirect)"


def build_pages(articles):
    """articles: [(title, text)] sorted by title -> [page xml] in dump order."""
    pages = []
    next_id = 1
    for title, text in articles:
        pages.append(page_xml(next_id, 0, title, text))
        next_id += 1
    for title, _ in articles[:REDIRECT_COUNT]:
        pages.append(page_xml(next_id, 0, redirect_title(title), f"#REDIRECT [[{title}]]\n",
                              redirect_to=title))
        next_id += 1
    if articles:
        first = articles[0][0]
        talk = (f"== Sources for the history section ==\nCould someone add a second source for "
                f"the history of [[{first}]]? ~~~~\n")
        pages.append(page_xml(next_id, 1, f"Talk:{first}", talk))
        next_id += 1
        category = "Articles in the lvmflow sample wiki.\n[[Category:Contents]]\n"
        pages.append(page_xml(next_id, 14, "Category:Sample articles", category))
    return pages


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=pathlib.Path, default=root / "data" / "articles")
    ap.add_argument("--output", type=pathlib.Path, default=root / "data" / "sample-pages-articles.xml")
    ap.add_argument("--bz2-multistream", action="store_true",
                    help="also write OUTPUT.bz2 as concatenated bz2 streams, like Wikimedia's "
                         "multistream dumps (header, then 100 pages per stream, then footer)")
    args = ap.parse_args()

    files = sorted(args.articles.glob("*.wiki"))
    if not files:
        sys.exit(f"{args.articles}: no *.wiki files (write articles there first)")
    articles = sorted((read_article(f) for f in files), key=lambda a: a[0])
    titles = [t for t, _ in articles]
    dupes = sorted({t for t in titles if titles.count(t) > 1})
    if dupes:
        sys.exit(f"{args.articles}: duplicate titles {dupes} (each article needs its own title)")

    header, pages, footer = header_xml(), build_pages(articles), "</mediawiki>\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes((header + "".join(pages) + footer).encode("utf-8"))
    if args.bz2_multistream:
        streams = [bz2.compress(header.encode("utf-8"), 9)]
        for i in range(0, len(pages), PAGES_PER_BZ2_STREAM):
            streams.append(bz2.compress("".join(pages[i:i + PAGES_PER_BZ2_STREAM]).encode("utf-8"), 9))
        streams.append(bz2.compress(footer.encode("utf-8"), 9))
        args.output.with_name(args.output.name + ".bz2").write_bytes(b"".join(streams))
    print(f"{args.output}: {len(articles)} articles, {len(pages)} pages")


if __name__ == "__main__":
    main()
