#!/usr/bin/env python3
"""Python peer of `ingest.wikipedia` + `chunk.text` for tools/bench/ingest: the usual way this is
done in research scripts. Standard library only: xml.etree iterparse (bz2 via the bz2 module),
regex cleaning, a regex sentence splitter and greedy ~40-word chunking.

    python3 ingest_peer.py DUMP.xml[.bz2]   -> one JSON line: seconds, articles, sections, chunks
"""
import bz2
import html
import json
import re
import sys
import time
import xml.etree.ElementTree as ET

DROP = {"references", "external links", "see also", "further reading", "notes", "bibliography",
        "notes and references", "references and notes", "footnotes", "citations", "sources",
        "works cited", "gallery"}
COMMENT = re.compile(r"<!--.*?-->", re.S)
REF = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.S | re.I)
BLOCK = re.compile(r"<(math|gallery|table|pre|source|syntaxhighlight|timeline|score)[^>]*>.*?</\1>", re.S | re.I)
TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
TABLE = re.compile(r"\{\|[^{}]*?\|\}", re.S)
FILE_LINK = re.compile(r"\[\[(?:File|Image|Category|[a-z]{2,3}(?:-[a-z]+)?):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", re.I)
LINK = re.compile(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]")
EXT_LINK = re.compile(r"\[(?:https?|ftp)://[^\s\]]+\s*([^\]]*)\]")
TAG = re.compile(r"</?[a-zA-Z][^>]*>")
QUOTES = re.compile(r"'{2,5}")
MAGIC = re.compile(r"__[A-Z]+__")
HEADING = re.compile(r"^(={2,6})\s*(.*?)\s*\1\s*$", re.M)
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def clean(text):
    text = COMMENT.sub("", text)
    text = REF.sub("", text)
    text = BLOCK.sub("", text)
    while True:                      # innermost templates first, until none are left
        text, n = TEMPLATE.subn("", text)
        if n == 0:
            break
    while True:
        text, n = TABLE.subn("", text)
        if n == 0:
            break
    text = FILE_LINK.sub("", text)
    text = LINK.sub(r"\1", text)
    text = EXT_LINK.sub(r"\1", text)
    text = TAG.sub("", text)
    text = QUOTES.sub("", text)
    text = MAGIC.sub("", text)
    return html.unescape(text)


def sections(text):
    parts = HEADING.split(text)
    yield "", parts[0]
    for i in range(1, len(parts) - 2, 3):
        yield parts[i + 1], parts[i + 2]


def chunk(text, target=40):
    chunks, current = [], []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(l.strip(" *#:;") for l in para.splitlines() if not l.startswith(("|", "!")))
        for sentence in SENTENCE.split(para.strip()):
            if not sentence:
                continue
            current.append(sentence)
            if sum(len(s.split()) for s in current) >= target:
                chunks.append(" ".join(current))
                current = []
    if current:
        chunks.append(" ".join(current))
    return chunks


def main():
    path = sys.argv[1]
    start, cpu_start = time.perf_counter(), time.process_time()
    stream = bz2.open(path, "rb") if path.endswith(".bz2") else open(path, "rb")
    articles = n_sections = n_chunks = 0
    for _, elem in ET.iterparse(stream, events=("end",)):
        if not elem.tag.endswith("}page"):
            continue
        ns_tag = elem.tag[:-4]
        ns = elem.findtext(ns_tag + "ns")
        redirect = elem.find(ns_tag + "redirect") is not None
        text = elem.findtext(f"{ns_tag}revision/{ns_tag}text") or ""
        if ns == "0" and not redirect and not text.lstrip().lower().startswith("#redirect"):
            cleaned = clean(text)
            kept = [(t, body) for t, body in sections(cleaned) if t.strip().lower() not in DROP]
            if sum(len(b) for _, b in kept) >= 200:
                articles += 1
                for _, body in kept:
                    c = chunk(body)
                    if c:
                        n_sections += 1
                        n_chunks += len(c)
        elem.clear()
    print(json.dumps({"seconds": time.perf_counter() - start,
                      "cpu_seconds": time.process_time() - cpu_start, "articles": articles,
                      "sections": n_sections, "chunks": n_chunks}))


if __name__ == "__main__":
    main()
