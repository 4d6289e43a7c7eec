#!/bin/bash
# t0305-docs: the documentation against the programs. Every command of
# `chjournal help` and every option of its usage appear in chjournal(1) (its
# synopsis and its entry under COMMANDS) and in README's table of commands;
# every option of `chjournald --help` in chjournald(8) and README; and no
# option those synopses, entries and rows document is unknown to the program
# (its help). Then the known slips stay fixed: no page names the lock file
# "journal.lock", every page gives the same kernel memory per watch, and the
# fanotify queue is a sysctl everywhere.
. "$(dirname "$0")/test-lib.sh"

command -v man >/dev/null 2>&1 && command -v col >/dev/null 2>&1 ||
	skip_all "needs man and col (man-db, bsdextrautils) to render the pages"

# render PAGE: the man page as plain text, lines unbroken
render() {
	MANWIDTH=2000 man -l "$1" 2>/dev/null | col -bx
}

render "$CHJ_SRCDIR/man/chjournal.1" >chjournal.1.txt
render "$CHJ_SRCDIR/man/chjournald.8" >chjournald.8.txt
render "$CHJ_SRCDIR/man/chjournal.conf.5" >chjournal.conf.5.txt
"$CHJOURNAL" help >help.txt
for c in $(sed -n "/^commands:/,/^\$/s/^  \([a-z]*\) .*/\1/p" help.txt); do
	"$CHJOURNAL" help "$c" >"help-$c.txt"
done
"$CHJOURNALD" --help >chjournald-help.txt

expect_success 'the pages render' '
	grep -q "^SYNOPSIS" chjournal.1.txt &&
	grep -q "^OPTIONS" chjournald.8.txt &&
	test -s help-status.txt
'

expect_success 'chjournal: commands and options in chjournal(1) and README, and back' '
	python3 - "$CHJ_SRCDIR/README" <<-\PY
	import glob, re, sys
	OPT = re.compile(r"(?<![\w@.-])(--?[A-Za-z0-9][A-Za-z0-9-]*)")
	readme = open(sys.argv[1]).read()
	man = open("chjournal.1.txt").read()
	cmds = re.findall(r"^  ([a-z]+) ", open("help.txt").read().split("commands:")[1].split("\n\n")[0], re.M)
	bad = []
	def section(text, name):
	    m = re.search(r"^%s\n(.*?)(?=^[A-Z][A-Z ]+\n)" % name, text, re.M | re.S)
	    return m.group(1) if m else ""
	synopsis = section(man, "SYNOPSIS")
	# the entries, up to the first subsection (indented 3)
	commands = re.split(r"^ {3}\S", section(man, "COMMANDS"), maxsplit=1, flags=re.M)[0]
	# the entries under COMMANDS: a line indented 7 spaces whose first
	# word (or words joined by "|") are commands starts one
	entries = {}
	cur = None
	for line in commands.split("\n"):
	    m = re.match(r"^ {7}(\S+)(.*)", line)
	    if m:
	        heads = [w for w in re.split(r"\s*\|\s*", (m.group(1) + m.group(2)).split(" [")[0]) if w.split(" ")[0] in cmds]
	        names = [h.split(" ")[0] for h in heads]
	        if names:
	            cur = names
	            for n in names:
	                entries.setdefault(n, {"head": "", "body": ""})
	                entries[n]["head"] += line + "\n"
	            continue
	    if cur:
	        for n in cur:
	            entries[n]["body"] += line + "\n"
	rows = {}
	for line in readme.split("\n"):
	    m = re.match(r"^\| `([a-z]+)[ `]", line)
	    if m and m.group(1) in cmds:
	        # a command with two forms (restore) has a row for each
        rows[m.group(1)] = rows.get(m.group(1), "") + " " + line.split(" | ")[0]
	for c in cmds:
	    h = open("help-%s.txt" % c).read()
	    usage = h.split("\n")[0]
	    known = set(OPT.findall(h))
	    want = set(OPT.findall(usage))
	    syn = "\n".join(l for l in synopsis.split("\n") if re.search(r"(^|\s|\|\s)%s(\s|$)" % c, l))
	    if not syn:
	        bad.append("chjournal(1) SYNOPSIS lacks %s" % c)
	    if c not in entries:
	        bad.append("chjournal(1) COMMANDS has no entry for %s" % c)
	        continue
	    text = entries[c]["head"] + entries[c]["body"]
	    for o in sorted(want):
	        if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), syn):
	            bad.append("chjournal(1) SYNOPSIS lacks %s %s" % (c, o))
	        if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), text):
	            bad.append("chjournal(1) COMMANDS: the entry of %s lacks %s" % (c, o))
	    if c not in rows:
	        bad.append("README: no row for %s in the table of commands" % c)
	    else:
	        for o in sorted(want):
	            if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), rows[c]):
	                bad.append("README: the row of %s lacks %s" % (c, o))
	        for o in sorted(set(OPT.findall(rows[c])) - known):
	            bad.append("README: the row of %s documents %s, unknown to chjournal help %s" % (c, o, c))
	    for o in sorted(set(OPT.findall(syn + entries[c]["head"])) - known - {"-c", "-h", "--help", "--version"}):
	        bad.append("chjournal(1): %s %s is documented, unknown to chjournal help %s" % (c, o, c))
	opts = section(man, "OPTIONS")
	for o in ("-c", "--config", "-h", "--help", "--version"):
	    if o not in opts:
	        bad.append("chjournal(1) OPTIONS lacks %s" % o)
	for r in rows:
	    if r not in cmds:
	        bad.append("README documents a command %s that chjournal does not have" % r)
	print("\n".join(bad))
	sys.exit(1 if bad else 0)
	PY
'

expect_success 'chjournald: options in chjournald(8) and README, and back' '
	python3 - "$CHJ_SRCDIR/README" <<-\PY
	import re, sys
	OPT = re.compile(r"(?<![\w@.-])(--?[A-Za-z][A-Za-z-]*)")
	readme = open(sys.argv[1]).read()
	man = open("chjournald.8.txt").read()
	helptext = open("chjournald-help.txt").read()
	known = set(OPT.findall(helptext))
	bad = []
	def section(text, name):
	    m = re.search(r"^%s\n(.*?)(?=^[A-Z][A-Z ]+\n)" % name, text, re.M | re.S)
	    return m.group(1) if m else ""
	syn, opts = section(man, "SYNOPSIS"), section(man, "OPTIONS")
	heads = "\n".join(l for l in opts.split("\n") if re.match(r"^ {7}-", l))
	# README: the paragraphs on chjournald in "Commands"
	cmdsec = readme.split("\n## Commands\n")[1].split("\n## ")[0]
	rd = cmdsec.split("`chjournal [-c FILE] COMMAND")[0]
	for o in sorted(known):
	    if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), heads):
	        bad.append("chjournald(8) OPTIONS lacks %s" % o)
	    if o not in ("-h", "--help", "--version", "--verbose", "--config", "--test", "--quiet") and \
	       not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), rd):
	        bad.append("README does not document chjournald %s" % o)
	for o in sorted(set(OPT.findall(syn + heads + rd)) - known):
	    bad.append("documented, unknown to chjournald --help: %s" % o)
	print("\n".join(bad))
	sys.exit(1 if bad else 0)
	PY
'

expect_success 'the lock file is journal.db.lock wherever it is named' '
	! grep -n "\(^\|[^.a-z]\)journal\.lock" chjournal.1.txt chjournald.8.txt chjournal.conf.5.txt \
	    "$CHJ_SRCDIR/README" "$CHJ_SRCDIR/contrib/chjournal.conf.example"
'

expect_success 'one figure for the kernel memory a watch costs, one advice for the queues' '
	! grep -n "10 KB\|1 KiB of kernel\|roughly 1 KiB\|needs no sysctl" chjournal.1.txt chjournald.8.txt \
	    chjournal.conf.5.txt "$CHJ_SRCDIR/README" &&
	for f in chjournald.8.txt chjournal.conf.5.txt "$CHJ_SRCDIR/README"; do
		tr "\n" " " <"$f" | grep -q "about  *1.2 KiB of  *kernel  *memory" || { echo "$f: no 1.2 KiB"; return 1; }
	done &&
	grep -q "fs.fanotify.max_queued_events" chjournald.8.txt &&
	grep -q "fs.fanotify.max_queued_events" "$CHJ_SRCDIR/README"
'

expect_success 'the two times of a commit have the same names in help, pages and README' '
	for w in committed_begin= committed_at=; do
		grep -q "$w" help-consumers.txt &&
		grep -q "$w" chjournal.1.txt &&
		grep -q "$w" "$CHJ_SRCDIR/README" || { echo "missing $w"; return 1; }
	done &&
	grep -q "committed at .* (up to its begin at" chjournal.1.txt
'

test_done
