#!/usr/bin/env python3
"""Makes a large MediaWiki dump by replicating data/sample-pages-articles.xml, for scale runs.

Copy k of every page gets its own title ("<title> (replica k)"), page and revision ids, and a
marker word ("Replica<k in letters>") at the start of every sentence of its prose lines, so no
two chunks of the output are identical (the item cache and the windows see distinct text) while
every copy keeps the sample's structure: same sections, same chunk counts, same filters hit.
The bundled sample has 2,766 chunks after chunk.text; a copy has ~2,870 (the markers lengthen
its sentences), so --copies 275 (what --chunks 760000 asks for) gives 789k.

    python3 tools/make_scale_dump.py --copies 18 --output /tmp/scale-48k.xml
    python3 tools/make_scale_dump.py --chunks 190000 --output /tmp/scale-190k.xml

Standard library only; the output depends only on the input and the copy count.
"""
import argparse
import math
import os
import re
import sys

SAMPLE_CHUNKS = 2766   # chunk.text rows of the bundled sample with default params

PAGE = re.compile(r"(  <page>\n.*?\n  </page>\n)", re.S)
TEXT = re.compile(r'(<text [^>]*>)(.*?)(</text>)', re.S)


def marker(k):
    """A pronounceable-enough word for copy k: letters only, so tokenizers keep it one piece."""
    letters = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        letters = chr(ord("a") + r) + letters
    return "Replica" + letters


def mark_prose(text, word):
    out = []
    for line in text.split("\n"):
        # Prose lines only: markup (templates, tables, headings, lists, categories) stays intact.
        if line and (line[0].isalpha() or line[0] in "'\""):
            line = word + " " + re.sub(r"([.!?]) (?=[A-Z'\"])", r"\1 " + word + " ", line)
        out.append(line)
    return "\n".join(out)


def replicate(page, k, id_stride):
    word = marker(k)
    page = re.sub(r"<title>(.*?)</title>", lambda m: "<title>%s (replica %d)</title>" % (m.group(1), k), page, count=1)
    page = re.sub(r"(<id>)(\d+)(</id>)", lambda m: "%s%d%s" % (m.group(1), int(m.group(2)) + k * id_stride, m.group(3)), page)
    # Redirect targets follow their copy, so redirects still point inside the same replica.
    page = re.sub(r'<redirect title="(.*?)" />', lambda m: '<redirect title="%s (replica %d)" />' % (m.group(1), k), page)

    def fix_text(m):
        body = mark_prose(m.group(2), word)
        return re.sub(r'bytes="\d+"', 'bytes="%d"' % len(body.encode()), m.group(1)) + body + m.group(3)
    return TEXT.sub(fix_text, page)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", default=os.path.join(os.path.dirname(__file__), "..", "data", "sample-pages-articles.xml"))
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--copies", type=int, help="number of copies of the sample")
    group.add_argument("--chunks", type=int, help="about this many chunks (copies = chunks / %d, rounded up)" % SAMPLE_CHUNKS)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    copies = args.copies if args.copies else math.ceil(args.chunks / SAMPLE_CHUNKS)
    if copies < 1:
        sys.exit("make_scale_dump: --copies must be at least 1")
    with open(args.sample, encoding="utf-8") as f:
        xml = f.read()
    pages = PAGE.findall(xml)
    if not pages:
        sys.exit("make_scale_dump: no <page> elements in %s" % args.sample)
    head = xml[: xml.index(pages[0])]
    tail = xml[xml.rindex(pages[-1]) + len(pages[-1]):]
    id_stride = 10 ** (len(str(max(int(i) for i in re.findall(r"<id>(\d+)</id>", xml)))) + 1)
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(head)
        for k in range(copies):
            for page in pages:
                out.write(replicate(page, k, id_stride))
        out.write(tail)
    os.replace(tmp, args.output)
    print("%s: %d copies of %d pages (about %d chunks)" % (args.output, copies, len(pages), copies * SAMPLE_CHUNKS))


if __name__ == "__main__":
    main()
