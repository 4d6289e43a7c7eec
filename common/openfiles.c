/* openfiles.c: the files under the roots open for writing now (see
 * openfiles.h). Every process's descriptors and mappings are read from /proc,
 * the loop devices' backing files from /sys/block, the swap files from
 * /proc/swaps. */
#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/kcmp.h>

#include "array.h"
#include "changeset.h"
#include "config.h"
#include "mounts.h"
#include "openfiles.h"

#define DELETED_SUFFIX " (deleted)"
#define NAME_MAX_BYTES 8192     /* a /proc link is at most a page, plus the suffix */
/* Processes are read by several threads: the work is the kernel's, building
 * each link and maps line, and it is per process. One thread per
 * SCAN_PER_THREAD processes, at most SCAN_THREADS: the 70 processes of an
 * idle 2-CPU machine took 1.6 ms on one thread, 1.0-1.1 on two or four, and
 * a thread costs tens of microseconds to start. */
#define SCAN_THREADS 8
#define SCAN_PER_THREAD 16

/* What reading one process's entry gave. */
enum proc_read {
	PROC_READ_OK = 0,
	PROC_READ_GONE,          /* the process exited meanwhile */
	PROC_READ_DENIED,        /* EACCES / EPERM */
	PROC_READ_NOMEM,
};

/* How much of a process's /proc/PID/smaps has been read. */
enum smaps_state {
	SMAPS_UNREAD = 0,
	SMAPS_READING,           /* smaps_fd open: read up to what was asked */
	SMAPS_ALL,               /* read to its end */
	SMAPS_UNREADABLE,
};

/* The processes to read, shared by the threads. */
struct pid_queue {
	pid_t *pids;
	size_t n, cap;
	size_t next;             /* the next to take (atomic) */
	int failed;              /* a thread ran out of memory: all stop (atomic) */
};

/* What one thread reads with: the fields above queue are copied into each
 * thread's (the pointers shared, read only). */
struct scan {
	struct openfiles *of;    /* its own findings and counts */
	const struct config *cfg;
	int procfd;
	struct stat mntns;            /* our mount namespace */
	dev_t *rootdevs;              /* the devices of the roots */
	size_t nrootdevs;
	struct mount_alias *aliases;  /* other places showing the roots' files */
	size_t naliases;
	int maps_text;                /* read maps as text, not by PROCMAP_QUERY */
	struct pid_queue *queue;
	char *buf;                    /* a maps or swaps file */
	size_t cap;
	char *smaps;                  /* the process's smaps, read so far */
	size_t smaps_len, smaps_cap;
	size_t smaps_from;            /* where the next search for a mapping starts */
	int smaps_fd;                 /* open while more of it may be needed */
	enum smaps_state smaps_state;
	size_t first_kept;            /* of->paths kept from this process on */
	int unnamed;                  /* this process holds a file it cannot name */
	pthread_t tid;
	char name[NAME_MAX_BYTES + 1];
	char alias[NAME_MAX_BYTES + 1];   /* a name through an alias, as the root's */
	char dents[8192] __attribute__((aligned(8)));   /* a /proc/PID/fd read */
};

static int
of_nomem(struct openfiles *of)
{
	return chj_error_set(&of->err, CHJ_ERR_NOMEM, 0, "out of memory");
}

static enum proc_read
proc_read_errno(int e)
{
	if (e == EACCES || e == EPERM)
		return PROC_READ_DENIED;
	if (e == ENOMEM)
		return PROC_READ_NOMEM;
	/* ENOENT, ESRCH, and whatever else an exiting process gives */
	return PROC_READ_GONE;
}

static int
has_suffix(const char *p, size_t n, const char *suffix)
{
	size_t sl = strlen(suffix);

	return n >= sl && memcmp(p + n - sl, suffix, sl) == 0;
}

/* What a name read from /proc is to us. */
enum name_kind {
	NAME_OUTSIDE = 0,        /* not a path under a root */
	NAME_SKIPPED,            /* under a root, not journaled (excluded, a
	                          * cookie, an unlinked file's old name) */
	NAME_KEEP,               /* a file to journal: in sc->name */
	NAME_TOO_LONG,           /* longer than NAME_MAX_BYTES: not known */
};

/* Copies the name (n bytes) into sc->name and says what it is. A name ending
 * in " (deleted)" is the old name of an unlinked file, unless a file under a
 * root has that very name (then it is kept: listing one more file is
 * harmless). */
static enum name_kind
classify_name(struct scan *sc, const char *p, size_t n)
{
	struct stat st;

	if (n == 0 || p[0] != '/' || memchr(p, '\0', n) != NULL)
		return NAME_OUTSIDE;
	if (n > NAME_MAX_BYTES)
		return NAME_TOO_LONG;
	memmove(sc->name, p, n);         /* p may be sc->name itself */
	sc->name[n] = '\0';
	if (config_root_of(sc->cfg, sc->name) < 0)
		return NAME_OUTSIDE;
	if (changeset_path_excluded(sc->cfg, sc->name) || config_is_cookie_path(sc->cfg, sc->name))
		return NAME_SKIPPED;
	if (has_suffix(sc->name, n, DELETED_SUFFIX) && lstat(sc->name, &st) < 0)
		return NAME_SKIPPED;
	return NAME_KEEP;
}

/* A name of ours outside the roots (n bytes, in sc->name or p) that is under
 * another place showing a root's files (a bind mount of its file system):
 * classified as that root's name (into sc->name); NAME_OUTSIDE when under
 * none. The caller checks that the name leads to its file. */
static enum name_kind
classify_alias(struct scan *sc, const char *p, size_t n)
{
	const char *t = mount_alias_translate(sc->aliases, sc->naliases, p, n, sc->alias,
	    sizeof sc->alias);

	return t == NULL ? NAME_OUTSIDE : classify_name(sc, t, strlen(t));
}

/* Appends a copy of sc->name to the paths. Returns 0 or -1 out of memory. */
static int
keep_name(struct scan *sc)
{
	struct openfiles *of = sc->of;
	char *copy = strdup(sc->name), **na;

	if (copy == NULL)
		return -1;
	na = array_grow(of->paths, of->npaths, &of->cap_paths, sizeof *of->paths, 64);
	if (na == NULL) {
		free(copy);
		return -1;
	}
	of->paths = na;
	of->paths[of->npaths++] = copy;
	return 0;
}

/* Keeps the name (a loop device's backing file, a swap file: named as we see
 * it) when it is a file under a root to journal, also through a bind mount.
 * Returns 1 when it is under a root (kept or not), 0 when not, -1 out of
 * memory. */
static int
add_name(struct scan *sc, const char *p, size_t n)
{
	enum name_kind k = classify_name(sc, p, n);

	if (k == NAME_OUTSIDE && sc->naliases > 0)
		k = classify_alias(sc, p, n);
	if (k == NAME_KEEP && keep_name(sc) < 0)
		return -1;
	return k != NAME_OUTSIDE;
}

static int
on_root_device(const struct scan *sc, dev_t dev)
{
	size_t i;

	for (i = 0; i < sc->nrootdevs; i++)
		if (sc->rootdevs[i] == dev)
			return 1;
	return 0;
}

/* 1 when path, as we see it, is the file dev/ino: a process of another mount
 * namespace named a file of ours by our name. */
static int
same_file(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* Sets *other_ns when the process at pfd is in another mount namespace than
 * ours (a container, a sandboxed service): the names its links show are
 * made in its mounts, and may not be ours. */
static enum proc_read
proc_other_ns(const struct scan *sc, int pfd, int *other_ns)
{
	struct stat st;

	*other_ns = 0;
	if (fstatat(pfd, "ns/mnt", &st, 0) < 0)
		return proc_read_errno(errno);
	*other_ns = st.st_dev != sc->mntns.st_dev || st.st_ino != sc->mntns.st_ino;
	return PROC_READ_OK;
}

/* A kernel thread or a zombie: an empty command line, no files of its own.
 * Such a process is not counted as unreadable when its links are denied. */
static int
proc_has_no_files(int pfd)
{
	char c;
	ssize_t n;
	int fd = openat(pfd, "cmdline", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, &c, 1);
	close(fd);
	return n == 0;
}


/* 1 when path is the file of the descriptor name in the fd directory fdd. */
static int
descriptor_of(int fdd, const char *name, const char *path)
{
	struct stat fst, pst;

	return fstatat(fdd, name, &fst, 0) == 0 && lstat(path, &pst) == 0 &&
	    fst.st_dev == pst.st_dev && fst.st_ino == pst.st_ino;
}

/* A descriptor (name, in the process's fd directory fdd) whose path is too
 * long for /proc to give (PATH_MAX and more: readlink() fails): the process
 * is counted (sc->unnamed) when it is open for writing on a regular file of
 * a root's file system, which may be under a root. */
static void
count_unnamed_descriptor(struct scan *sc, int fdd, const char *name)
{
	struct stat st;

	if (fstatat(fdd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !(st.st_mode & S_IWUSR))
		return;
	if (fstatat(fdd, name, &st, 0) == 0 && S_ISREG(st.st_mode) && st.st_nlink > 0 &&
	    on_root_device(sc, st.st_dev))
		sc->unnamed = 1;
}
/* The descriptors of the process at pfd. The name comes first: most are
 * not under a root (sockets, pipes, logs), and cost one readlink. For one
 * that is, the mode of its /proc/PID/fd link is the file's open mode
 * (S_IWUSR: opened O_WRONLY or O_RDWR, as the flags of fdinfo say). In
 * another mount namespace (other_ns), every file open for writing on a
 * root's file system is checked: its name must be the file's in ours, else
 * it may be a file under a root named otherwise (*unmatched). */
static enum proc_read
scan_fds(struct scan *sc, int pfd, int other_ns, int *unmatched)
{
	struct stat st;
	size_t off = 0, len = 0;
	int fdd = openat(pfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	enum proc_read rc = PROC_READ_OK;
	int aliased;

	if (fdd < 0)
		return proc_read_errno(errno);
	for (;;) {
		const struct dirent64 *e;
		enum name_kind k;
		ssize_t n;

		if (off == len) {
			/* getdents64() itself, not readdir(): fdopendir() adds an
			 * fstat() and an fcntl() per process, a tenth of the scan */
			if ((n = getdents64(fdd, sc->dents, sizeof sc->dents)) <= 0) {
				if (n < 0)
					rc = proc_read_errno(errno);
				break;
			}
			off = 0;
			len = (size_t)n;
		}
		e = (const struct dirent64 *)(sc->dents + off);
		off += e->d_reclen;
		if (e->d_name[0] == '.')
			continue;
		n = readlinkat(fdd, e->d_name, sc->name, sizeof sc->name);
		if (n < 0 && (errno == EACCES || errno == EPERM)) {
			rc = PROC_READ_DENIED;
			break;
		}
		if (n < 0 && errno == ENAMETOOLONG) {
			count_unnamed_descriptor(sc, fdd, e->d_name);
			continue;
		}
		if (n <= 0 || (size_t)n >= sizeof sc->name || sc->name[0] != '/')
			continue;        /* closed meanwhile, too long, not a file */
		sc->name[n] = '\0';
		k = classify_name(sc, sc->name, (size_t)n);
		aliased = k == NAME_OUTSIDE && !other_ns && sc->naliases > 0 &&
		    (k = classify_alias(sc, sc->name, (size_t)n)) == NAME_KEEP;
		if (k != NAME_KEEP && !other_ns)
			continue;
		if (fstatat(fdd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !(st.st_mode & S_IWUSR))
			continue;
		if (aliased && !descriptor_of(fdd, e->d_name, sc->name)) {
			sc->unnamed = 1;         /* the mounts changed since read */
			continue;
		}
		if (k == NAME_KEEP && keep_name(sc) < 0) {
			rc = PROC_READ_NOMEM;
			break;
		}
		if (other_ns && fstatat(fdd, e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode) &&
		    st.st_nlink > 0 && on_root_device(sc, st.st_dev) &&
		    !same_file(sc->name, st.st_dev, st.st_ino))
			*unmatched = 1;
	}
	close(fdd);
	return rc;
}

/* Reads the whole file name at dirfd into sc->buf (NUL-terminated); *len is
 * its length. Returns 0 or an errno. */
static int
read_file_into(char **buf, size_t *cap, int dirfd, const char *name, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC), e = 0;
	ssize_t n;

	*len = 0;
	if (fd < 0)
		return errno;
	for (;;) {
		char *nb = array_reserve(*buf, *len + 4096 + 1, cap, 1, 16384);

		if (nb == NULL) {
			e = ENOMEM;
			break;
		}
		*buf = nb;
		n = read(fd, *buf + *len, *cap - *len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : 0;
			break;
		}
		*len += (size_t)n;
	}
	close(fd);
	if (*buf != NULL)
		(*buf)[*len] = '\0';
	return e;
}

static int
read_file(struct scan *sc, int dirfd, const char *name, size_t *len)
{
	return read_file_into(&sc->buf, &sc->cap, dirfd, name, len);
}

static unsigned long
parse_hex(const char **p, const char *end, int *ok)
{
	unsigned long v = 0;
	const char *s = *p;

	while (*p < end) {
		char c = **p;
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (d < 0)
			break;
		v = v * 16 + (unsigned long)d;
		(*p)++;
	}
	if (*p == s)
		*ok = 0;
	return v;
}

static int
expect_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return 0;
	(*p)++;
	return 1;
}

int
openfiles_parse_maps_line(const char *line, size_t len, struct openfiles_map *m)
{
	const char *p = line, *end = line + len, *perms;
	int ok = 1;

	memset(m, 0, sizeof *m);
	m->start = parse_hex(&p, end, &ok);
	ok &= expect_char(&p, end, '-');
	m->end = parse_hex(&p, end, &ok);
	ok &= expect_char(&p, end, ' ');
	if (!ok || end - p < 5)
		return -1;
	perms = p;
	p += 4;
	ok &= expect_char(&p, end, ' ');
	(void)parse_hex(&p, end, &ok);                   /* offset */
	ok &= expect_char(&p, end, ' ');
	m->major = (unsigned)parse_hex(&p, end, &ok);
	ok &= expect_char(&p, end, ':');
	m->minor = (unsigned)parse_hex(&p, end, &ok);
	ok &= expect_char(&p, end, ' ');
	for (; p < end && *p >= '0' && *p <= '9'; p++)   /* inode, decimal */
		m->inode = m->inode * 10 + (unsigned long)(*p - '0');
	if (!ok || (p < end && *p != ' '))
		return -1;
	m->shared = perms[3] == 's';
	m->shared_write = m->shared && perms[1] == 'w';
	while (p < end && *p == ' ')
		p++;
	if (p < end) {
		m->path = p;
		m->pathlen = (size_t)(end - p);
	}
	return 0;
}

/* What the smaps read so far say of mapping m's VmFlags: "mw" (VM_MAYWRITE)
 * or not, or not read that far yet. */
enum smaps_answer { SMAPS_MAY_WRITE, SMAPS_NO_WRITE, SMAPS_NOT_YET };

/* 1 when the smaps line at p is an entry's first line for a mapping that
 * starts below addr ("start-end perms ...", the addresses in hex; the other
 * lines start with a field name such as "Size:" or "AnonHugePages:"). */
static int
smaps_entry_below(const char *p, unsigned long addr)
{
	char *end;
	unsigned long start;

	if (!isxdigit((unsigned char)*p))
		return 0;
	start = strtoul(p, &end, 16);
	return *end == '-' && start < addr;
}

/* Mappings are asked about in the order of maps, the order of smaps too: a
 * search starts at the entry of the last one found, or after the entries of
 * mappings below the last one asked, so that a process read in many parts
 * is searched once, not again from its start after each part. Asked out of
 * order, a mapping is not found and counts (map_may_write()). */
static enum smaps_answer
smaps_says_may_write(struct scan *sc, const struct openfiles_map *m)
{
	char key[64];
	const char *p, *flags, *eol;
	int kl = snprintf(key, sizeof key, "%08lx-%08lx ", m->start, m->end);

	if (sc->smaps == NULL)
		return SMAPS_NOT_YET;
	for (p = sc->smaps + sc->smaps_from; p != NULL && *p != '\0';
	    p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL) {
		if (strncmp(p, key, (size_t)kl) == 0)
			break;
		if (smaps_entry_below(p, m->start))
			sc->smaps_from = (size_t)(p - sc->smaps);
	}
	if (p == NULL || *p == '\0')
		return SMAPS_NOT_YET;
	sc->smaps_from = (size_t)(p - sc->smaps);
	/* an entry ends with its VmFlags line */
	if ((flags = strstr(p, "\nVmFlags:")) == NULL)
		return SMAPS_NOT_YET;
	flags += strlen("\nVmFlags:");
	if ((eol = strchr(flags, '\n')) == NULL)
		return SMAPS_NOT_YET;
	for (p = flags; p + 2 <= eol; p++)
		if (p[0] == 'm' && p[1] == 'w' && p[-1] == ' ' && (p + 2 == eol || p[2] == ' '))
			return SMAPS_MAY_WRITE;
	return SMAPS_NO_WRITE;
}

/* Reads the next part of the process's smaps (sc->smaps_state says how far
 * it got). The kernel makes each entry as it is read, walking the page
 * tables of its mapping for the sizes it shows: read to the end, it took
 * 0.9 ms for a Python process of 105 mappings, and a begin with 1,000 such
 * processes, each with a read-only shared mapping under the root, 0.44 ms
 * more per process. Read only up to the mapping asked about, the mappings
 * after it are not walked. */
static void
smaps_read_more(struct scan *sc, int pfd)
{
	char *nb;
	ssize_t n;

	if (sc->smaps_state == SMAPS_UNREAD) {
		sc->smaps_len = sc->smaps_from = 0;
		if ((sc->smaps_fd = openat(pfd, "smaps", O_RDONLY | O_CLOEXEC)) < 0) {
			sc->smaps_state = SMAPS_UNREADABLE;
			return;
		}
		sc->smaps_state = SMAPS_READING;
	}
	if ((nb = array_reserve(sc->smaps, sc->smaps_len + 16384 + 1, &sc->smaps_cap, 1, 16384)) == NULL) {
		sc->smaps_state = SMAPS_UNREADABLE;
		return;
	}
	sc->smaps = nb;
	do
		n = read(sc->smaps_fd, sc->smaps + sc->smaps_len, 16384);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		sc->smaps_state = SMAPS_UNREADABLE;
	else if (n == 0)
		sc->smaps_state = SMAPS_ALL;
	else
		sc->smaps_len += (size_t)n;
	sc->smaps[sc->smaps_len] = '\0';
}

/* Closes what smaps_read_more() left open: the process is done. */
static void
smaps_done(struct scan *sc)
{
	if (sc->smaps_state == SMAPS_READING)
		close(sc->smaps_fd);
	sc->smaps_state = SMAPS_UNREAD;
	sc->smaps_len = sc->smaps_from = 0;
	if (sc->smaps != NULL)
		sc->smaps[0] = '\0';
}

/* 1 when the shared mapping m can write its file: it does now, or mprotect()
 * can make it (its file was opened for writing: VM_MAYWRITE, "mw" in the
 * mapping's VmFlags in /proc/PID/smaps, read only for a read-only shared
 * mapping under a root, and only as far as that mapping). Not the mode of
 * the map_files link: the kernel keeps a map_files entry's inode while a
 * mapping of the same range exists, so it shows the open mode of the first
 * file mapped there, not of the one mapped now (test-openfiles
 * test_map_files_mode_of_an_earlier_mapping). Unreadable, or not there
 * (unmapped since maps was read, or remapped): counted. */
static int
map_may_write(struct scan *sc, int pfd, const struct openfiles_map *m)
{
	enum smaps_answer a;

	if (m->shared_write)
		return 1;
	while ((a = smaps_says_may_write(sc, m)) == SMAPS_NOT_YET &&
	    (sc->smaps_state == SMAPS_UNREAD || sc->smaps_state == SMAPS_READING))
		smaps_read_more(sc, pfd);
	return a != SMAPS_NO_WRITE;
}

/* 1 when the name in sc->name was kept from this process already (one of
 * its descriptors open for writing): a mapping of it adds nothing. A Cyrus
 * imapd maps cyrus.index read-only, from the descriptor it keeps open
 * O_RDWR: its smaps need not be read. */
static int
kept_from_this_process(const struct scan *sc)
{
	size_t i;

	for (i = sc->first_kept; i < sc->of->npaths; i++)
		if (strcmp(sc->of->paths[i], sc->name) == 0)
			return 1;
	return 0;
}

/* Keeps the name when it is a file under a root that the mapping may write
 * (*may_write: -1 not known yet, else map_may_write()). Returns as add_name. */
static int
add_map_candidate(struct scan *sc, int pfd, const struct openfiles_map *m, const char *p,
    size_t n, int *may_write)
{
	enum name_kind k = classify_name(sc, p, n);

	if (k == NAME_TOO_LONG) {
		if (on_root_device(sc, makedev(m->major, m->minor))) {
			if (*may_write < 0)
				*may_write = map_may_write(sc, pfd, m);
			sc->unnamed |= *may_write;
		}
		return 1;
	}
	if (k != NAME_KEEP)
		return k != NAME_OUTSIDE;
	if (kept_from_this_process(sc))
		return 1;
	if (*may_write < 0)
		*may_write = map_may_write(sc, pfd, m);
	return (*may_write && keep_name(sc) < 0) ? -1 : 1;
}

/* Adds a shared mapping's name. The kernel writes a newline in it as "\012"
 * and leaves a backslash as it is, so such a name is ambiguous: the
 * map_files link has its exact bytes (reading it takes CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE); without it both readings are kept. */
static int
add_map_name(struct scan *sc, int pfd, const struct openfiles_map *m)
{
	char link[64], *dec;
	ssize_t n;
	size_t i, o;
	int under, may_write = -1;

	if (memmem(m->path, m->pathlen, "\\012", 4) == NULL)
		return add_map_candidate(sc, pfd, m, m->path, m->pathlen, &may_write);
	snprintf(link, sizeof link, "map_files/%lx-%lx", m->start, m->end);
	n = readlinkat(pfd, link, sc->name, sizeof sc->name);
	if (n > 0 && (size_t)n < sizeof sc->name)
		return add_map_candidate(sc, pfd, m, sc->name, (size_t)n, &may_write);
	if ((under = add_map_candidate(sc, pfd, m, m->path, m->pathlen, &may_write)) < 0)
		return -1;
	if ((dec = malloc(m->pathlen)) == NULL)
		return -1;
	for (i = o = 0; i < m->pathlen; o++) {
		if (m->pathlen - i >= 4 && memcmp(m->path + i, "\\012", 4) == 0) {
			dec[o] = '\n';
			i += 4;
		} else {
			dec[o] = m->path[i++];
		}
	}
	n = add_map_candidate(sc, pfd, m, dec, o, &may_write);
	free(dec);
	return n < 0 ? -1 : (under || n);
}

/* A shared mapping whose name is outside the roots, under another place
 * showing a root's files (a bind mount): kept under the root's name when it
 * may write its file and that name leads to the file, counted (sc->unnamed)
 * when it does not. Returns 0, or -1 out of memory. */
static int
add_map_alias(struct scan *sc, int pfd, const struct openfiles_map *m)
{
	struct stat st;

	if (classify_alias(sc, m->path, m->pathlen) != NAME_KEEP || kept_from_this_process(sc) ||
	    !map_may_write(sc, pfd, m))
		return 0;
	if (lstat(sc->name, &st) < 0 || st.st_ino != (ino_t)m->inode) {
		sc->unnamed = 1;
		return 0;
	}
	return keep_name(sc);
}

/* One shared mapping of the process at pfd: its file is kept when the
 * mapping may write it. In another mount namespace, a file on a root's file
 * system whose name is not the file's in ours is *unmatched. exact: the
 * name's bytes are the file's (else as maps writes it). */
static enum proc_read
scan_map(struct scan *sc, int pfd, const struct openfiles_map *m, int exact, int other_ns,
    int *unmatched)
{
	int may_write = -1, under;
	dev_t dev = makedev(m->major, m->minor);

	if (exact)
		under = add_map_candidate(sc, pfd, m, m->path, m->pathlen, &may_write);
	else
		under = add_map_name(sc, pfd, m);
	if (under == 0 && !other_ns && sc->naliases > 0)
		under = add_map_alias(sc, pfd, m);
	if (under < 0)
		return PROC_READ_NOMEM;
	if (other_ns && on_root_device(sc, dev) && !has_suffix(m->path, m->pathlen, DELETED_SUFFIX) &&
	    map_may_write(sc, pfd, m)) {
		/* the name as maps has it: if it is not the file's, say so */
		char *p = strndup(m->path, m->pathlen);

		if (p == NULL)
			return PROC_READ_NOMEM;
		if (!same_file(p, dev, (ino_t)m->inode))
			*unmatched = 1;
		free(p);
	}
	return PROC_READ_OK;
}

/* The shared mappings of maps as text (before Linux 6.11): every line is
 * made by the kernel, most are not shared and are skipped unparsed. */
static enum proc_read
scan_maps_text(struct scan *sc, int pfd, int other_ns, int *unmatched)
{
	struct openfiles_map m;
	size_t len;
	char *line, *nl, *sp;
	enum proc_read r = PROC_READ_OK;
	int e = read_file(sc, pfd, "maps", &len);

	if (e != 0)
		return proc_read_errno(e);
	for (line = sc->buf; r == PROC_READ_OK && line < sc->buf + len; line = nl + 1) {
		if ((nl = memchr(line, '\n', (size_t)(sc->buf + len - line))) == NULL)
			nl = sc->buf + len;
		sp = memchr(line, ' ', (size_t)(nl - line));
		if (sp == NULL || nl - sp < 5 || sp[4] != 's')
			continue;
		if (openfiles_parse_maps_line(line, (size_t)(nl - line), &m) == 0 && m.shared &&
		    m.path != NULL)
			r = scan_map(sc, pfd, &m, 0, other_ns, unmatched);
	}
	return r;
}

/* PROCMAP_QUERY (linux/fs.h, Linux 6.11): the next mapping that matches, with
 * its name as the file's bytes, and no text made for the others. */
#define OF_PROCMAP_QUERY _IOWR('f', 17, struct of_procmap_query)
#define OF_QUERY_VMA_WRITABLE 0x02
#define OF_QUERY_VMA_SHARED 0x08
#define OF_QUERY_COVERING_OR_NEXT_VMA 0x10
#define OF_QUERY_FILE_BACKED_VMA 0x20

struct of_procmap_query {
	uint64_t size, query_flags, query_addr;
	uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
	uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};

/* scan_maps_query() could not read every mapping: the name of one is too
 * long for the ioctl (PATH_MAX and more: ENAMETOOLONG, the mapping's place
 * not given either), maps as text has it whole. */
#define QUERY_NAME_TOO_LONG (-2)

/* The shared file mappings of the process at pfd by PROCMAP_QUERY. Returns
 * PROC_READ_OK, another proc_read, -1 when the kernel has no such ioctl
 * (then nothing was read), or QUERY_NAME_TOO_LONG. */
static int
scan_maps_query(struct scan *sc, int pfd, int other_ns, int *unmatched)
{
	struct of_procmap_query q;
	struct openfiles_map m;
	uint64_t addr = 0;
	int fd = openat(pfd, "maps", O_RDONLY | O_CLOEXEC), r = (int)PROC_READ_OK, first = 1;

	if (fd < 0)
		return (int)proc_read_errno(errno);
	for (;;) {
		memset(&q, 0, sizeof q);
		q.size = sizeof q;
		q.query_flags = OF_QUERY_COVERING_OR_NEXT_VMA | OF_QUERY_FILE_BACKED_VMA |
		    OF_QUERY_VMA_SHARED;
		q.query_addr = addr;
		q.vma_name_addr = (uint64_t)(uintptr_t)sc->name;
		q.vma_name_size = sizeof sc->name;
		if (ioctl(fd, OF_PROCMAP_QUERY, &q) < 0) {
			if (errno == ENOENT || errno == ESRCH)
				break;       /* no more; or no memory map (a kernel thread) */
			if (first && (errno == ENOTTY || errno == EINVAL))
				r = -1;
			else if (errno == ENAMETOOLONG)
				r = QUERY_NAME_TOO_LONG;
			else
				r = (int)proc_read_errno(errno);
			break;
		}
		first = 0;
		memset(&m, 0, sizeof m);
		m.start = (unsigned long)q.vma_start;
		m.end = (unsigned long)q.vma_end;
		m.shared = 1;
		m.shared_write = (q.vma_flags & OF_QUERY_VMA_WRITABLE) != 0;
		m.major = q.dev_major;
		m.minor = q.dev_minor;
		m.inode = (unsigned long)q.inode;
		m.path = sc->name;
		m.pathlen = q.vma_name_size > 0 ? q.vma_name_size - 1 : 0;
		if ((r = (int)scan_map(sc, pfd, &m, 1, other_ns, unmatched)) != PROC_READ_OK)
			break;
		addr = q.vma_end;
	}
	close(fd);
	return r;
}

/* The shared mappings of the process at pfd that may write their file: the
 * only trace of a writer that closed its descriptor and writes through the
 * mapping. */
static enum proc_read
scan_maps(struct scan *sc, int pfd, int other_ns, int *unmatched)
{
	int r;

	if (!sc->maps_text) {
		if ((r = scan_maps_query(sc, pfd, other_ns, unmatched)) >= 0)
			return (enum proc_read)r;
		/* a name too long: this process's maps again, whole (what the
		 * query kept is kept twice, made unique at the end; smaps searched
		 * from its start, as the mappings are asked again from the lowest);
		 * else no PROCMAP_QUERY here: not asked again */
		if (r == QUERY_NAME_TOO_LONG)
			sc->smaps_from = 0;
		else
			sc->maps_text = 1;
	}
	return scan_maps_text(sc, pfd, other_ns, unmatched);
}

/* The threads of process pid (its number, as a name in /proc): the link
 * count of its task directory is 2 plus their number. 0 when it cannot be
 * read. */
static unsigned long
proc_threads(int procfd, const char *pid)
{
	char task[48];
	struct stat st;

	snprintf(task, sizeof task, "%s/task", pid);
	return fstatat(procfd, task, &st, 0) == 0 && st.st_nlink > 2 ? st.st_nlink - 2 : 0;
}

/* 1 when process pid (its number, as a name in /proc) has no memory of its
 * own: a kernel thread, a zombie, or a process whose first thread exited
 * while others run (pthread_exit() in main): its exe link names nothing.
 * Read by its path in /proc, before the process's directory is opened: a
 * kernel thread then costs this and the count of its threads, two calls
 * (reading its empty descriptors and maps took nine; 64 of an idle 2-CPU
 * machine's 70 processes are kernel threads, and a large machine has
 * several per CPU). Denied (another user's process, not root): 0, read as
 * any other. */
static int
proc_without_memory(int procfd, const char *pid)
{
	char name[48], c;

	snprintf(name, sizeof name, "%s/exe", pid);
	return readlinkat(procfd, name, &c, 1) < 0 && errno == ENOENT;
}

/* Calls fn for each thread of the process at ppfd but skip, until it
 * returns other than PROC_READ_OK (returned). Its own buffer: fn may read
 * descriptors with sc->dents. */
static enum proc_read
each_thread(struct scan *sc, int ppfd, pid_t skip,
    enum proc_read (*fn)(struct scan *sc, int ppfd, pid_t tid, void *ctx), void *ctx)
{
	char dents[4096] __attribute__((aligned(8)));
	enum proc_read r = PROC_READ_OK;
	int tfd = openat(ppfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ssize_t n, off;

	if (tfd < 0)
		return proc_read_errno(errno);
	while (r == PROC_READ_OK && (n = getdents64(tfd, dents, sizeof dents)) > 0) {
		for (off = 0; r == PROC_READ_OK && off < n; ) {
			const struct dirent64 *e = (const struct dirent64 *)(dents + off);
			long tid = strtol(e->d_name, NULL, 10);

			off += e->d_reclen;
			if (tid > 0 && tid != (long)skip)
				r = fn(sc, ppfd, (pid_t)tid, ctx);
		}
	}
	close(tfd);
	return r;
}

/* Opens the directory of thread tid of the process at ppfd (task/TID). */
static int
open_task_dir(int ppfd, pid_t tid)
{
	char name[48];

	snprintf(name, sizeof name, "task/%ld", (long)tid);
	return openat(ppfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* A thread's directory, opened by open_thread(). */
struct live_thread {
	int fd;
	pid_t tid;
};

/* each_thread(): opens the first thread whose directory opens; stops there
 * (PROC_READ_GONE: found, not an error). */
static enum proc_read
open_thread(struct scan *sc, int ppfd, pid_t tid, void *ctx)
{
	struct live_thread *lt = ctx;

	(void)sc;
	if ((lt->fd = open_task_dir(ppfd, tid)) < 0)
		return PROC_READ_OK;
	lt->tid = tid;
	return PROC_READ_GONE;
}

/* What scan_thread_table() compares with and adds to. */
struct thread_scan {
	pid_t tid;               /* the thread whose table was read */
	int *unmatched;
};

/* each_thread(): a thread with a descriptor table of its own (made by
 * unshare(CLONE_FILES), or clone() without CLONE_FILES) has descriptors that
 * no other entry shows; they are read from its task/TID/fd. kcmp() says
 * whether the table is the one read; where it cannot, the thread is read. */
static enum proc_read
scan_thread_table(struct scan *sc, int ppfd, pid_t tid, void *ctx)
{
	struct thread_scan *ts = ctx;
	enum proc_read r;
	int tfd, other_ns;

	if (syscall(SYS_kcmp, ts->tid, tid, KCMP_FILES, 0, 0) == 0)
		return PROC_READ_OK;
	if ((tfd = open_task_dir(ppfd, tid)) < 0)
		return errno == ENOMEM ? PROC_READ_NOMEM : PROC_READ_OK;
	r = proc_other_ns(sc, tfd, &other_ns);
	if (r == PROC_READ_OK)
		r = scan_fds(sc, tfd, other_ns, ts->unmatched);
	close(tfd);
	/* a thread that exited meanwhile had nothing more */
	return r == PROC_READ_GONE ? PROC_READ_OK : r;
}

/* Reads the process at ppfd, through pfd: its own directory, or a live
 * thread's when its first thread exited (tid). */
static enum proc_read
scan_process_at(struct scan *sc, int ppfd, int pfd, pid_t tid, unsigned long threads,
    int *unmatched)
{
	struct thread_scan ts = { tid, unmatched };
	enum proc_read r;
	int other_ns;

	sc->first_kept = sc->of->npaths;
	r = proc_other_ns(sc, pfd, &other_ns);
	if (r == PROC_READ_OK)
		r = scan_fds(sc, pfd, other_ns, unmatched);
	if (r == PROC_READ_OK)
		r = scan_maps(sc, pfd, other_ns, unmatched);
	if (r == PROC_READ_OK && threads > 1)
		r = each_thread(sc, ppfd, tid, scan_thread_table, &ts);
	smaps_done(sc);
	if (r == PROC_READ_DENIED && proc_has_no_files(pfd))
		r = PROC_READ_GONE;
	return r;
}

/* Reads one process. Its /proc/PID/fd and maps are its first thread's: when
 * that thread has exited, they are empty while the other threads still hold
 * its files and memory, which are read through one of them. Returns 0, or
 * -1 out of memory. */
static int
scan_process(struct scan *sc, pid_t pid)
{
	struct openfiles *of = sc->of;
	enum proc_read r = PROC_READ_GONE;
	unsigned long threads;
	int ppfd, pfd, unmatched = 0, without_memory;
	pid_t tid = pid;
	char name[32];

	sc->unnamed = 0;
	snprintf(name, sizeof name, "%ld", (long)pid);
	without_memory = proc_without_memory(sc->procfd, name);
	threads = proc_threads(sc->procfd, name);
	/* a kernel thread or a zombie has no files */
	if (without_memory && threads < 2)
		return 0;
	if ((ppfd = openat(sc->procfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno == ENOMEM ? of_nomem(of) : 0;
	pfd = ppfd;
	if (without_memory) {
		struct live_thread lt = { -1, 0 };

		pfd = -1;
		if (each_thread(sc, ppfd, pid, open_thread, &lt) != PROC_READ_GONE)
			goto done;
		pfd = lt.fd;
		tid = lt.tid;
	}
	r = scan_process_at(sc, ppfd, pfd, tid, threads, &unmatched);
done:
	if (pfd >= 0 && pfd != ppfd)
		close(pfd);
	close(ppfd);
	switch (r) {
	case PROC_READ_NOMEM:
		return of_nomem(of);
	case PROC_READ_DENIED:
		of->denied++;
		break;
	case PROC_READ_OK:
		of->processes++;
		of->foreign += unmatched;
		of->unnamed += sc->unnamed;
		break;
	case PROC_READ_GONE:
		break;
	}
	return 0;
}

/* A thread: takes processes from the queue until it is empty. */
static void *
scan_worker(void *arg)
{
	struct scan *sc = arg;
	struct pid_queue *q = sc->queue;
	size_t i;

	while (!__atomic_load_n(&q->failed, __ATOMIC_RELAXED) &&
	    (i = __atomic_fetch_add(&q->next, 1, __ATOMIC_RELAXED)) < q->n) {
		if (scan_process(sc, q->pids[i]) < 0) {
			__atomic_store_n(&q->failed, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

/* The pids in /proc but skip, into q. */
static int
list_pids(struct scan *sc, pid_t skip, struct pid_queue *q)
{
	struct dirent *e;
	DIR *d;
	int dfd, rc = 0;

	if ((dfd = dup(sc->procfd)) < 0 || (d = fdopendir(dfd)) == NULL) {
		int err = errno;

		if (dfd >= 0)
			close(dfd);
		return chj_error_set(&sc->of->err, CHJ_ERR_SYS, err, "cannot read '/proc'");
	}
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		pid_t *np;

		if (e->d_name[0] < '1' || e->d_name[0] > '9' || *end != '\0' || pid == (long)skip)
			continue;
		if ((np = array_grow(q->pids, q->n, &q->cap, sizeof *q->pids, 1024)) == NULL) {
			rc = of_nomem(sc->of);
			break;
		}
		q->pids = np;
		q->pids[q->n++] = (pid_t)pid;
	}
	closedir(d);
	return rc;
}

/* Moves what a thread found into of. Returns 0 or -1 (of's error set). */
static int
merge_part(struct openfiles *of, struct openfiles *part)
{
	char **na;

	if (part->err.code != CHJ_OK && of->err.code == CHJ_OK) {
		of->err = part->err;
		return -1;
	}
	of->processes += part->processes;
	of->denied += part->denied;
	of->foreign += part->foreign;
	of->unnamed += part->unnamed;
	if (part->npaths == 0)
		return 0;
	na = array_reserve(of->paths, of->npaths + part->npaths, &of->cap_paths, sizeof *of->paths, 64);
	if (na == NULL)
		return of_nomem(of);
	of->paths = na;
	memcpy(of->paths + of->npaths, part->paths, part->npaths * sizeof *part->paths);
	of->npaths += part->npaths;
	part->npaths = 0;
	return 0;
}

/* Every process but skip, on up to SCAN_THREADS threads. */
static int
scan_processes(struct scan *sc, pid_t skip)
{
	struct pid_queue q;
	struct scan *w = NULL;
	struct openfiles *parts = NULL;
	size_t i, nw, started = 1;
	int rc = -1;

	memset(&q, 0, sizeof q);
	if (list_pids(sc, skip, &q) < 0)
		goto done;
	nw = q.n / SCAN_PER_THREAD;
	nw = nw < 1 ? 1 : nw > SCAN_THREADS ? SCAN_THREADS : nw;
	if ((w = calloc(nw, sizeof *w)) == NULL || (parts = calloc(nw, sizeof *parts)) == NULL) {
		of_nomem(sc->of);
		goto done;
	}
	for (i = 0; i < nw; i++) {
		memcpy(&w[i], sc, offsetof(struct scan, queue));
		w[i].of = &parts[i];
		w[i].queue = &q;
	}
	/* fewer threads when they cannot be made: the queue is shared */
	while (started < nw && pthread_create(&w[started].tid, NULL, scan_worker, &w[started]) == 0)
		started++;
	scan_worker(&w[0]);
	for (i = 1; i < started; i++)
		pthread_join(w[i].tid, NULL);
	rc = 0;
	for (i = 0; i < nw; i++) {
		if (merge_part(sc->of, &parts[i]) < 0)
			rc = -1;
		openfiles_free(&parts[i]);
		free(w[i].buf);
		free(w[i].smaps);
	}
done:
	free(q.pids);
	free(parts);
	free(w);
	return rc;
}

/* The backing file of each loop device that is not read-only: the block
 * layer writes it, and no event says so. */
static int
scan_loops(struct scan *sc)
{
	struct dirent *e;
	DIR *d = opendir("/sys/block");
	int rc = 0;

	if (d == NULL) {
		sc->of->sys_errno = errno;
		return 0;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		size_t len;
		int bfd;

		if (strncmp(e->d_name, "loop", 4) != 0)
			continue;
		if ((bfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			continue;
		if (read_file(sc, bfd, "ro", &len) == 0 && len > 0 && sc->buf[0] == '1') {
			close(bfd);
			continue;
		}
		if (read_file(sc, bfd, "loop/backing_file", &len) == 0 && len > 0) {
			/* one line: the name as is, a newline in it too */
			if (sc->buf[len - 1] == '\n')
				len--;
			rc = add_name(sc, sc->buf, len) < 0 ? of_nomem(sc->of) : 0;
		}
		close(bfd);
	}
	closedir(d);
	return rc;
}

/* Undoes the kernel's octal escapes (\040 for a space, ...) in place. */
static size_t
unescape_octal(char *s, size_t n)
{
	size_t i, o;

	for (i = o = 0; i < n; o++) {
		if (s[i] == '\\' && n - i >= 4 && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			s[o] = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 4;
		} else {
			s[o] = s[i++];
		}
	}
	return o;
}

/* Swap files: written by the kernel through the block layer. A line is the
 * name (blanks and backslashes escaped), blanks, the type, a tab, ... */
static int
scan_swaps(struct scan *sc)
{
	size_t len;
	char *line, *nl;

	if (read_file(sc, sc->procfd, "swaps", &len) != 0)
		return 0;
	for (line = sc->buf; line < sc->buf + len; line = nl + 1) {
		size_t n, t;

		if ((nl = memchr(line, '\n', (size_t)(sc->buf + len - line))) == NULL)
			nl = sc->buf + len;
		if (line == sc->buf)
			continue;        /* the header */
		for (n = 0; line + n < nl && line[n] != ' ' && line[n] != '\t'; n++)
			;
		for (t = n; line + t < nl && line[t] == ' '; t++)
			;
		if (nl - (line + t) < 5 || memcmp(line + t, "file\t", 5) != 0)
			continue;
		n = unescape_octal(line, n);
		if (add_name(sc, line, n) < 0)
			return of_nomem(sc->of);
	}
	return 0;
}

/* The other places of our mount namespace that show the roots' files (bind
 * mounts): a file open for writing under such a name is kept under the
 * root's. Without the mount table (unreadable), none: /proc was read. */
static int
scan_aliases(struct scan *sc)
{
	struct mount_table t = { 0 };
	size_t i, cap = 0;
	int rc = 0;

	if (mount_table_read(&t, -1) < 0) {
		rc = t.err.code == CHJ_ERR_NOMEM ? of_nomem(sc->of) : 0;
		goto done;
	}
	for (i = 0; i < sc->cfg->nroots && rc == 0; i++)
		if (mount_table_aliases(&t, sc->cfg->roots[i], &sc->aliases, &sc->naliases, &cap) < 0)
			rc = of_nomem(sc->of);
done:
	mount_table_free(&t);
	return rc;
}

/* Our mount namespace, the devices of the roots and the other places that
 * show their files. */
static int
scan_setup(struct scan *sc)
{
	struct openfiles *of = sc->of;
	struct stat st;
	size_t i;

	sc->procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sc->procfd < 0 || fstatat(sc->procfd, "self/ns/mnt", &sc->mntns, 0) < 0)
		return chj_error_set(&of->err, CHJ_ERR_SYS, errno, "cannot read '/proc'");
	if (sc->cfg->nroots > 0 &&
	    (sc->rootdevs = calloc(sc->cfg->nroots, sizeof *sc->rootdevs)) == NULL)
		return of_nomem(of);
	for (i = 0; i < sc->cfg->nroots; i++)
		if (stat(sc->cfg->roots[i], &st) == 0)
			sc->rootdevs[sc->nrootdevs++] = st.st_dev;
	return scan_aliases(sc);
}

int
openfiles_scan(struct openfiles *of, const struct config *cfg, pid_t skip, int flags)
{
	struct scan sc;
	int rc = -1;

	memset(of, 0, sizeof *of);
	memset(&sc, 0, sizeof sc);
	sc.of = of;
	sc.cfg = cfg;
	sc.procfd = -1;
	sc.maps_text = (flags & OPENFILES_MAPS_TEXT) != 0;
	if (scan_setup(&sc) < 0 || scan_processes(&sc, skip) < 0 || scan_loops(&sc) < 0 ||
	    scan_swaps(&sc) < 0)
		goto done;
	rc = 0;
done:
	of->npaths = array_sort_unique_strings(of->paths, of->npaths);
	if (sc.procfd >= 0)
		close(sc.procfd);
	free(sc.rootdevs);
	mount_aliases_free(sc.aliases, sc.naliases);
	free(sc.buf);
	free(sc.smaps);
	return rc;
}

void
openfiles_free(struct openfiles *of)
{
	size_t i;

	for (i = 0; i < of->npaths; i++)
		free(of->paths[i]);
	free(of->paths);
	of->paths = NULL;
	of->npaths = of->cap_paths = 0;
}
