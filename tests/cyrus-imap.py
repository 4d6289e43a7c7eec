#!/usr/bin/env python3
# cyrus-imap.py: what an IMAP client does and sees, for the Cyrus tests
# (t1231). Logs in as the user itself (SASL PLAIN, no authorization id), so
# \Seen is the owner's. The lab accepts any password.
#
#   cyrus-imap.py fill   PORT USER FOLDER   create FOLDER, append messages with
#                                           varied flags, keywords, dates and
#                                           bytes, copy one from INBOX, expunge one
#   cyrus-imap.py state  PORT USER FOLDER   one line per message: sha1 of the
#                                           bytes, size, internal date (epoch),
#                                           flags (sorted, without \Recent)
#   cyrus-imap.py delete PORT USER FOLDER
#   cyrus-imap.py exists PORT USER FOLDER   exit 0 when FOLDER exists
#   cyrus-imap.py ustate PORT USER FOLDER   state with identity (t1232): a line
#                                           "UIDVALIDITY n UIDNEXT n", then per
#                                           message its UID before the state line
#   cyrus-imap.py ustate PORT USER '*'      ustate of every folder of USER,
#                                           each after a line "== FOLDER"
#   cyrus-imap.py touch  PORT USER FOLDER   keyword lab-touched on its first message
#   cyrus-imap.py annotate PORT USER FOLDER /comment of its first and last
#                                           messages (RFC 5257): shared and private
#   cyrus-imap.py annots PORT USER FOLDER   each message's UID and /comment values
#   cyrus-imap.py setmeta PORT USER FOLDER  SETMETADATA (RFC 5464) of each stdin
#                                           line "ENTRY VALUE" (VALUE NIL: removed)
#   cyrus-imap.py getmeta PORT USER FOLDER  GETMETADATA of /shared/comment,
#                                           /private/comment, /shared/vendor/cmu/
#                                           cyrus-imapd/expire, /private/specialuse: "ENTRY VALUE"
#                                           lines, sorted
#   cyrus-imap.py hms    PORT USER FOLDER   the folder's HIGHESTMODSEQ
#   cyrus-imap.py mailboxid PORT USER FOLDER  its MAILBOXID (RFC 8474): the uniqueid
#   cyrus-imap.py lsub   PORT USER -        the subscribed folders, sorted
#   cyrus-imap.py sieveput  SIEVEPORT USER NAME   ManageSieve: stdin as script NAME,
#                                                 made the active one
#   cyrus-imap.py sievelist SIEVEPORT USER -      each script: NAME, sha1 of its text,
#                                                 ACTIVE for the active one
#   cyrus-imap.py deluser PORT USER -       the admin deletes user USER
#   cyrus-imap.py readonly PORT USER -      a read-only session: LIST, LSUB,
#                                           STATUS of every folder, EXAMINE and
#                                           SELECT of each with FETCH of flags,
#                                           envelopes, structures and bodies by
#                                           BODY.PEEK, SEARCH, NOOP, CHECK, no
#                                           change: prints nothing
#   cyrus-imap.py seen   PORT USER FOLDER   SELECT + FETCH BODY[] of an unseen
#                                           message (sets its \Seen); its UID
#   cyrus-imap.py flag   PORT USER FOLDER   \Flagged on its first message
#   cyrus-imap.py expunge PORT USER FOLDER  \Deleted + EXPUNGE of its last message

import base64
import hashlib
import imaplib
import re
import sys
import time


def login(port, user):
    m = imaplib.IMAP4("127.0.0.1", int(port))
    m.authenticate("PLAIN", lambda _: ("\0%s\0x" % user).encode())
    return m


def ok(res):
    if res[0] != "OK":
        raise SystemExit("IMAP: %r" % (res,))
    return res[1]


def q(name):
    return '"%s"' % name


def fill(m, folder):
    ok(m.create(q(folder)))
    specs = [
        # flags, internal date, body
        ("(\\Seen)", "01-Jan-2019 10:00:00 +0000", b"plain seen"),
        ("(\\Seen \\Flagged $Label1)", "15-Feb-2020 23:59:59 +0100", b"flagged with a keyword"),
        ("(\\Answered)", "29-Feb-2020 00:00:01 -0800", b"answered, unseen"),
        ("(\\Draft \\Seen)", "31-Dec-2021 12:34:56 +0000", b"a draft"),
        ("(\\Deleted \\Seen)", "02-Mar-2022 08:00:00 +0000", b"deleted but not expunged"),
        ("(lab-kw1 $Junk \\Flagged)", "03-Apr-2023 09:10:11 +0000", b"two keywords"),
        ("()", "04-May-2024 05:06:07 +0000", b"no flags at all"),
        ("(\\Seen)", "05-Jun-2024 06:07:08 +0000", b"8-bit body: gr\xc3\xbc\xc3\x9fe"),
        ("(\\Seen)", "06-Jul-2024 07:08:09 +0000", b"to be expunged"),
        ("(\\Answered \\Flagged \\Seen lab-kw2)", "07-Aug-2024 08:09:10 +0000",
         b"long body\r\n" + b"x" * 70000),
    ]
    for i, (flags, date, body) in enumerate(specs):
        msg = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: t1231 message %d\r\n"
               b"Message-ID: <t1231-%d@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"\r\n%s\r\n" % (i, i, body))
        ok(m.append(q(folder), flags, '"%s"' % date, msg))
    ok(m.select(q(folder)))
    typ, data = m.search(None, "SUBJECT", '"message 8"')
    ok(m.store(data[0].decode(), "+FLAGS", "(\\Deleted)"))
    # the expunged one and the \Deleted one: only the latter stays
    ok(m.store("5", "-FLAGS", "(\\Deleted)"))
    ok(m.expunge())
    ok(m.store("5", "+FLAGS", "(\\Deleted)"))
    # a message from INBOX (hard-linked in the spool), flags changed after the copy
    ok(m.select("INBOX"))
    ok(m.copy("1", q(folder)))
    ok(m.select(q(folder)))
    ok(m.store("*", "FLAGS", "(\\Seen lab-kw1)"))


def messages(m, folder):
    """(uid, "sha1 size date flags") of every message of folder, read-only"""
    ok(m.select(q(folder), readonly=True))
    typ, data = m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    ok((typ, data))
    out = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, body = item[0].decode(), item[1]
        uid = int(re.search(r"UID (\d+)", meta).group(1))
        flags = re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()
        flags = sorted(f for f in flags if f != "\\Recent")
        date = time.mktime(imaplib.Internaldate2tuple(item[0]))
        size = int(re.search(r"RFC822\.SIZE (\d+)", meta).group(1))
        if size != len(body):
            raise SystemExit("RFC822.SIZE %d but %d bytes" % (size, len(body)))
        out.append((uid, "%s %d %d %s" % (hashlib.sha1(body).hexdigest(), size, date,
                                          " ".join(flags))))
    return out


def state(m, folder):
    for line in sorted(line for _, line in messages(m, folder)):
        print(line)


def ustate(m, folder):
    typ, data = m.status(q(folder), "(UIDVALIDITY UIDNEXT)")
    ok((typ, data))
    st = data[0].decode()
    print("UIDVALIDITY %s UIDNEXT %s" % (re.search(r"UIDVALIDITY (\d+)", st).group(1),
                                         re.search(r"UIDNEXT (\d+)", st).group(1)))
    for uid, line in sorted(messages(m, folder)):
        print("%d %s" % (uid, line))


def all_ustate(m):
    typ, data = m.list('""', "*")
    ok((typ, data))
    names = sorted(re.search(r'"([^"]*)"$|(\S+)$', d.decode()).group(1) or
                   re.search(r'(\S+)$', d.decode()).group(1) for d in data if d)
    for name in names:
        print("== %s" % name)
        ustate(m, name)


def readonly(m):
    """what a mail client does that only reads: nothing in it changes state"""
    typ, data = m.list('""', "*")
    ok((typ, data))
    names = [re.search(r'"([^"]*)"$', d.decode()).group(1) if d.decode().endswith('"')
             else d.decode().rsplit(" ", 1)[1] for d in data if d]
    ok(m.lsub('""', "*"))
    ok(m.noop())
    for name in names:
        ok(m.status(q(name), "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"))
    for name in names:
        ok(m.select(q(name), readonly=True))
        typ, data = m.uid("SEARCH", None, "ALL")
        ok((typ, data))
        if data[0]:
            ok(m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE "
                     "BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.100> BODY.PEEK[])"))
        ok(m.close())
    for name in names:
        ok(m.select(q(name)))
        ok(m.uid("SEARCH", None, "UNSEEN"))
        typ, data = m.uid("SEARCH", None, "ALL")
        ok((typ, data))
        if data[0]:
            ok(m.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)] "
                     "BODY.PEEK[])"))
        ok(m.noop())
        ok(m.check())
        ok(m.unselect())
    ok(m.noop())


class ManageSieve:
    def __init__(self, port, user):
        import socket
        self.s = socket.create_connection(("127.0.0.1", int(port)), 10)
        self.f = self.s.makefile("rb")
        self.resp()
        auth = base64.b64encode(b"\0" + user.encode() + b"\0x").decode()
        self.cmd('AUTHENTICATE "PLAIN" "%s"\r\n' % auth)

    def resp(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise SystemExit("ManageSieve: connection closed")
            m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
            if m:
                line += self.f.read(int(m.group(1)))
            if re.match(rb"^(OK|NO|BYE)", line):
                if not line.startswith(b"OK"):
                    raise SystemExit("ManageSieve: %r" % (lines + [line]))
                return lines
            lines.append(line)

    def cmd(self, text, data=b""):
        self.s.sendall(text.encode() + data)
        return self.resp()


META_ENTRIES = ("/shared/comment", "/private/comment", "/shared/vendor/cmu/cyrus-imapd/expire",
                "/private/specialuse")


def meta_quote(v):
    if v == "NIL":
        return "NIL"
    return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')


def setmeta(m, folder, lines):
    imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))
    items = []
    for line in lines:
        if not line.strip():
            continue
        entry, _, value = line.rstrip("\n").partition(" ")
        items.append("%s %s" % (entry, meta_quote(value)))
    ok(m._simple_command("SETMETADATA", q(folder), "(%s)" % " ".join(items)))


def meta_tokens(data):
    """The tokens of METADATA responses: literals come as tuples."""
    out = []
    for d in data:
        if isinstance(d, tuple):
            head, lit = d
            out.extend(meta_scan(head.decode()))
            out[-1] = lit.decode()          # the {N} placeholder
        elif d:
            out.extend(meta_scan(d.decode()))
    return out


def meta_scan(s):
    toks = []
    i = 0
    while i < len(s):
        c = s[i]
        if c in " ()":
            i += 1
        elif c == '"':
            j, buf = i + 1, ""
            while s[j] != '"':
                if s[j] == "\\":
                    j += 1
                buf += s[j]
                j += 1
            toks.append(buf)
            i = j + 1
        elif c == "{":
            j = s.index("}", i)
            toks.append(None)
            i = j + 1
        else:
            j = i
            while j < len(s) and s[j] not in " ()":
                j += 1
            toks.append(s[i:j])
            i = j
    return toks


def getmeta(m, folder):
    imaplib.Commands.setdefault("GETMETADATA", ("AUTH", "SELECTED"))
    typ, dat = m._simple_command("GETMETADATA", "(DEPTH infinity)", q(folder),
                                 "(%s)" % " ".join(META_ENTRIES))
    ok((typ, dat))
    typ, data = m._untagged_response(typ, dat, "METADATA")
    toks = meta_tokens(data)
    pairs = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t is not None and t.startswith("/") and i + 1 < len(toks):
            if toks[i + 1] != "NIL":
                pairs.append((t, toks[i + 1]))
            i += 2
        else:
            i += 1
    for entry, value in sorted(pairs):
        print(entry, value)


def main():
    cmd, port, user, folder = sys.argv[1:5]
    if cmd == "sieveput":
        ms = ManageSieve(port, user)
        data = sys.stdin.buffer.read()
        ms.cmd('PUTSCRIPT "%s" {%d+}\r\n' % (folder, len(data)), data + b"\r\n")
        ms.cmd('SETACTIVE "%s"\r\n' % folder)
        return
    if cmd == "sievelist":
        ms = ManageSieve(port, user)
        out = []
        for line in ms.cmd("LISTSCRIPTS\r\n"):
            m = re.match(rb'^"([^"]*)"( ACTIVE)?', line)
            if not m:
                continue
            body = ms.cmd('GETSCRIPT "%s"\r\n' % m.group(1).decode())
            text = b"".join(body)
            text = text.split(b"\r\n", 1)[1] if text.startswith(b"{") else text
            out.append("%s %s%s" % (m.group(1).decode(), hashlib.sha1(text).hexdigest(),
                                    " ACTIVE" if m.group(2) else ""))
        for line in sorted(out):
            print(line)
        return
    if cmd == "deluser":
        m = login(port, "admin")
        ok(m.setacl("user/%s" % user, "admin", "lrswipkxtecda"))
        ok(m.delete("user/%s" % user))
        m.logout()
        return
    m = login(port, user)
    if cmd == "fill":
        fill(m, folder)
    elif cmd == "state":
        state(m, folder)
    elif cmd == "delete":
        ok(m.delete(q(folder)))
    elif cmd == "setmeta":
        setmeta(m, folder, sys.stdin.read().splitlines())
    elif cmd == "getmeta":
        getmeta(m, folder)
    elif cmd == "hms":
        typ, data = m.status(q(folder), "(HIGHESTMODSEQ)")
        ok((typ, data))
        print(re.search(r"HIGHESTMODSEQ (\d+)", data[0].decode()).group(1))
    elif cmd == "annotate":
        ok(m.select(q(folder)))
        ok(m.uid("STORE", "1:*", "ANNOTATION",
                 '(/comment (value.shared "seen by all" value.priv "the owner\'s note"))'))
        typ, data = m.uid("SEARCH", None, "ALL")
        ok((typ, data))
        last = data[0].split()[-1].decode()
        ok(m.uid("STORE", last, "ANNOTATION", '(/comment (value.shared "the last one"))'))
    elif cmd == "annots":
        ok(m.select(q(folder), readonly=True))
        typ, data = m.uid("FETCH", "1:*", "(ANNOTATION (/comment (value.shared value.priv)))")
        ok((typ, data))
        for line in sorted((d.decode() for d in data if d),
                           key=lambda l: int(re.search(r"UID (\d+)", l).group(1))):
            uid = re.search(r"UID (\d+)", line).group(1)
            vals = sorted(re.findall(r'(value\.\w+) ("[^"]*"|NIL)', line))
            print(uid, " ".join("%s=%s" % v for v in vals))
    elif cmd == "mailboxid":
        typ, data = m.status(q(folder), "(MAILBOXID)")
        ok((typ, data))
        print(re.search(r"MAILBOXID \(([^)]*)\)", data[0].decode()).group(1))
    elif cmd == "lsub":
        typ, data = m.lsub('""', "*")
        ok((typ, data))
        for line in sorted(d.decode() for d in data if d):
            print(line)
    elif cmd == "touch":
        ok(m.select(q(folder)))
        ok(m.store("1", "+FLAGS", "(lab-touched)"))
    elif cmd == "readonly":
        readonly(m)
    elif cmd == "seen":
        ok(m.select(q(folder)))
        typ, data = m.uid("SEARCH", None, "UNSEEN")
        ok((typ, data))
        if not data[0]:
            raise SystemExit("no unseen message in %s" % folder)
        uid = data[0].split()[0].decode()
        ok(m.uid("FETCH", uid, "(BODY[])"))
        print(uid)
    elif cmd == "flag":
        ok(m.select(q(folder)))
        ok(m.store("1", "+FLAGS", "(\\Flagged)"))
    elif cmd == "expunge":
        ok(m.select(q(folder)))
        ok(m.store("*", "+FLAGS", "(\\Deleted)"))
        ok(m.expunge())
    elif cmd == "ustate" and folder == "*":
        all_ustate(m)
    elif cmd == "ustate":
        ustate(m, folder)
    elif cmd == "exists":
        typ, data = m.list('""', q(folder))
        sys.exit(0 if typ == "OK" and data and data[0] is not None else 1)
    m.logout()


main()
