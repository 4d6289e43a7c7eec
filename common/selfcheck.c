/* selfcheck.c: the configuration and the machine, checked for `chjournald -t`
 * and `chjournal check` (selfcheck.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "consumer.h"
#include "daemonlock.h"
#include "fanprobe.h"
#include "journal.h"
#include "mounts.h"
#include "nfsexport.h"
#include "path.h"
#include "selfcheck.h"

/* file systems that keep a directory's link count exact (2: no
 * subdirectory), as the daemon's crawl trusts them */
#define EXT4_MAGIC  0xEF53
#define XFS_MAGIC   0x58465342
#define TMPFS_MAGIC_ 0x01021994

struct sc {
	const struct config *cfg;
	const struct selfcheck_opts *o;
	selfcheck_fn fn;
	void *ctx;
	int worst;
	pid_t daemon_pid;             /* the daemon running on the journal, 0: none */
	struct mount_table mounts;
	int have_mounts;
	unsigned long dirs;           /* under every root, roots included */
	int dirs_more;                /* the count stopped at a limit */
	unsigned long walk_limit;
};

const char *
selfcheck_level_name(enum selfcheck_level level)
{
	static const char *const names[] = { "ok", "warning", "error" };

	return (unsigned)level < 3 ? names[level] : "?";
}

static void
say(struct sc *s, enum selfcheck_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(struct sc *s, enum selfcheck_level level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if ((int)level > s->worst)
		s->worst = (int)level;
	s->fn(s->ctx, level, msg);
}

/* "1,234,567" */
static char *
num(unsigned long long v, char *buf, size_t size)
{
	char raw[32];
	size_t n, i, o = 0;

	snprintf(raw, sizeof raw, "%llu", v);
	n = strlen(raw);
	for (i = 0; i < n && o + 2 < size; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = raw[i];
	}
	buf[o] = '\0';
	return buf;
}

/* "1 directory", "12 directories", "more than 5 directories" */
static char *
dirs_str(unsigned long long n, int more, char *buf, size_t size)
{
	char n1[32];

	snprintf(buf, size, "%s%s director%s", more ? "more than " : "", num(n, n1, sizeof n1),
	    n == 1 && !more ? "y" : "ies");
	return buf;
}

/* "1.5 GiB" */
static char *
bytes(unsigned long long v, char *buf, size_t size)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	int u = 0;

	while (d >= 1024.0 && u < 4) {
		d /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu bytes", v);
	else
		snprintf(buf, size, "%.1f %s", d, units[u]);
	return buf;
}

/* Reads a number from SYSCTL_DIR/name ("fs/inotify/max_user_watches"):
 * the value, or -1 when it cannot be read (an older kernel). */
static long long
read_sysctl(struct sc *s, const char *name)
{
	char path[PATH_MAX], buf[64];
	long long v;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", s->o->sysctl_dir ? s->o->sysctl_dir : "/proc/sys", name);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	if (fgets(buf, sizeof buf, f) == NULL || sscanf(buf, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* "FILE:LINE: key 'K'", or "FILE: key 'K'" for a key left to its default. */
static char *
where(struct sc *s, int line, const char *key, char *buf, size_t size)
{
	if (line > 0)
		snprintf(buf, size, "%s:%d: key '%s'", s->cfg->file, line, key);
	else
		snprintf(buf, size, "%s: key '%s' (default)", s->cfg->file, key);
	return buf;
}

/* ---- the configuration ---- */

static void
config_finding(void *ctx, const char *msg)
{
	say(ctx, SELFCHECK_ERROR, "%s", msg);
}

/* ---- roots ---- */

struct dcount {
	const struct config *cfg;
	unsigned long dirs, limit;
	unsigned long unreadable;
	char first_unreadable[PATH_MAX + 64];
	int stopped;                  /* past the limit or the time */
	struct timespec deadline;
	dev_t dev;                    /* of the last directory looked at */
	int exact;                    /* its file system keeps link counts exact */
};

static int
past(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Counts the directories below path (path itself counted by the caller),
 * not reading those whose link count says they have none, as the daemon's
 * crawl does. path has room for PATH_MAX bytes. */
static void
count_below(struct dcount *dc, char *path, size_t len)
{
	struct stat st;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	DIR *d;
	int fd;

	if (dc->stopped)
		return;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return;          /* gone meanwhile */
		if (dc->unreadable++ == 0)
			snprintf(dc->first_unreadable, sizeof dc->first_unreadable, "'%s': %s", path,
			    strerror(errno));
		return;
	}
	if (st.st_dev != dc->dev) {
		struct statfs sfs;

		dc->dev = st.st_dev;
		dc->exact = fstatfs(fd, &sfs) == 0 && (sfs.f_type == EXT4_MAGIC ||
		    sfs.f_type == XFS_MAGIC || sfs.f_type == TMPFS_MAGIC_);
	}
	if (dc->exact && st.st_nlink == 2) {
		close(fd);
		return;
	}
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		unsigned char type = de->d_type;
		size_t nl = strlen(de->d_name);

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (type == DT_UNKNOWN) {
			struct stat cst;

			if (fstatat(dirfd(d), de->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			type = S_ISDIR(cst.st_mode) ? DT_DIR : DT_REG;
		}
		if (type != DT_DIR)
			continue;
		if (len + 1 + nl >= PATH_MAX) {
			dc->dirs++;      /* counted; the daemon watches it in pieces */
			continue;
		}
		path[len] = '/';
		memcpy(path + len + 1, de->d_name, nl + 1);
		if (config_is_excluded(dc->cfg, path)) {
			path[len] = '\0';
			continue;
		}
		path[len] = '\0';
		if (++dc->dirs > dc->limit || ((dc->dirs & 1023) == 0 && past(&dc->deadline))) {
			dc->stopped = 1;
			break;
		}
		if (n == cap) {
			char **nn = realloc(names, (cap ? cap * 2 : 16) * sizeof *nn);

			if (nn == NULL)
				break;
			names = nn;
			cap = cap ? cap * 2 : 16;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	closedir(d);
	/* depth first, holding no descriptor while below */
	for (i = 0; i < n; i++) {
		size_t nl = strlen(names[i]);

		path[len] = '/';
		memcpy(path + len + 1, names[i], nl + 1);
		count_below(dc, path, len + 1 + nl);
		path[len] = '\0';
		free(names[i]);
	}
	free(names);
}

/* Network file systems: another host's writes make no event here. */
static int
is_network_fs(const char *type)
{
	static const char *const net[] = { "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph",
		"glusterfs", "9p", "afs", "lustre", "ocfs2", "gfs2", "beegfs", NULL };
	size_t i;

	for (i = 0; net[i] != NULL; i++)
		if (strcmp(type, net[i]) == 0)
			return 1;
	return strncmp(type, "fuse.", 5) == 0 && strstr(type, "sshfs") != NULL;
}

static void
check_root(struct sc *s, size_t i, const char *exported)
{
	const struct config *c = s->cfg;
	const char *root = c->roots[i];
	char w[PATH_MAX + 128], n1[64], fsdesc[PATH_MAX + 256] = "";
	char path[PATH_MAX + 64];
	struct dcount dc;
	int missing = config_root_missing(c, i), fd;
	const struct mount_entry *m;

	where(s, c->root_lines ? c->root_lines[i] : 0, "root", w, sizeof w);
	if (missing != 0) {
		say(s, SELFCHECK_WARNING, "%s: '%s' is missing (%s): not an error: the daemon covers "
		    "it with rescan records and retries it every 10 s; backups go on without it and "
		    "list all of it once it is back", w, root, strerror(missing));
		return;
	}
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		say(s, SELFCHECK_ERROR, "%s: '%s' cannot be read by this user (%s): %s", w, root,
		    strerror(errno), s->o->role == SELFCHECK_DAEMON ? "the daemon cannot watch it" :
		    "list cannot list it: every run would fail");
		return;
	}
	close(fd);
	if (s->have_mounts && (m = mount_table_of(&s->mounts, root)) != NULL) {
		snprintf(fsdesc, sizeof fsdesc, "%s (%s, mounted on %s)", m->fstype, m->source, m->point);
		if (is_network_fs(m->fstype))
			say(s, SELFCHECK_WARNING, "%s: '%s' is on %s, a network file system: changes "
			    "made by other hosts are not seen (inotify and fanotify hear this kernel's "
			    "own writes only)", w, root, m->fstype);
	}
	if (exported != NULL && path_list_contains(exported, root)) {
		if (c->backend == CONFIG_BACKEND_FANOTIFY)
			say(s, SELFCHECK_OK, "%s: '%s' is exported by the kernel NFS server: fanotify "
			    "hears its clients' writes by file handle", w, root);
		else
			say(s, SELFCHECK_WARNING, "%s: '%s' is exported by the kernel NFS server (or a "
			    "directory above or below it): inotify does not hear what its clients write "
			    "once a file's name has left the kernel's cache: use backend = fanotify there",
			    w, root);
	}
	if (s->o->role == SELFCHECK_AGENT && access(root, W_OK | X_OK) < 0)
		say(s, SELFCHECK_ERROR, "%s: '%s' is not writable by this user (%s): begin and sync "
		    "create their sync cookies in each root", w, root, strerror(errno));
	/* the directories below: one inotify watch each */
	memset(&dc, 0, sizeof dc);
	dc.cfg = c;
	/* the limit is on every directory of the roots, this root included */
	dc.limit = s->walk_limit > s->dirs + 1 ? s->walk_limit - s->dirs - 1 : 0;
	dc.dev = (dev_t)-1;
	clock_gettime(CLOCK_MONOTONIC, &dc.deadline);
	dc.deadline.tv_sec += (s->o->time_limit_ms ? s->o->time_limit_ms : SELFCHECK_TIME_LIMIT_MS) / 1000;
	dc.deadline.tv_nsec += (long)((s->o->time_limit_ms ? s->o->time_limit_ms :
	    SELFCHECK_TIME_LIMIT_MS) % 1000) * 1000000L;
	if (dc.deadline.tv_nsec >= 1000000000L) {
		dc.deadline.tv_sec++;
		dc.deadline.tv_nsec -= 1000000000L;
	}
	if (s->dirs_more) {
		s->dirs++;
		say(s, SELFCHECK_OK, "%s: '%s': a readable directory%s%s; the directories below it "
		    "are not counted (the count stopped at %s before it)", w, root,
		    fsdesc[0] ? " on " : "", fsdesc, num(s->walk_limit, n1, sizeof n1));
		return;
	}
	snprintf(path, sizeof path, "%s", root);
	count_below(&dc, path, strlen(path));
	if (dc.stopped) {
		s->dirs_more = 1;
		if (dc.dirs > dc.limit)
			dc.dirs = dc.limit;
	}
	s->dirs += dc.dirs + 1;
	say(s, SELFCHECK_OK, "%s: '%s': a readable directory%s%s; %s below it%s", w, root,
	    fsdesc[0] ? " on " : "", fsdesc, dirs_str(dc.dirs, dc.stopped, n1, sizeof n1),
	    dc.stopped ? " (counting stopped there)" : " (not excluded)");
	if (dc.unreadable > 0)
		say(s, SELFCHECK_ERROR, "%s: %s directories below '%s' cannot be read by this user "
		    "(the first: %s): %s", w, num(dc.unreadable, n1, sizeof n1), root,
		    dc.first_unreadable, s->o->role == SELFCHECK_DAEMON ? "the daemon cannot watch "
		    "them (covered by rescans), and list fails on them" :
		    "list fails on them: every run would fail");
}

/* ---- the kernel: inotify and fanotify ---- */

/* Counts the inotify instances and watches held by processes of uid other
 * than except (the running daemon, whose own are not needed twice). */
static void
inotify_in_use(struct sc *s, uid_t uid, pid_t except, unsigned long *instances,
    unsigned long *watches)
{
	const char *proc = s->o->proc_dir ? s->o->proc_dir : "/proc";
	struct dirent *pe;
	DIR *pd = opendir(proc);

	*instances = *watches = 0;
	if (pd == NULL)
		return;
	while ((pe = readdir(pd)) != NULL) {
		char p[PATH_MAX], link[64];
		struct dirent *fe;
		struct stat st;
		DIR *fdd;

		if (!isdigit((unsigned char)pe->d_name[0]) || atol(pe->d_name) == (long)except ||
		    atol(pe->d_name) == (long)getpid())
			continue;
		snprintf(p, sizeof p, "%s/%s", proc, pe->d_name);
		if (stat(p, &st) < 0 || st.st_uid != uid)
			continue;
		snprintf(p, sizeof p, "%s/%s/fd", proc, pe->d_name);
		if ((fdd = opendir(p)) == NULL)
			continue;
		while ((fe = readdir(fdd)) != NULL) {
			ssize_t l;
			FILE *f;
			char line[256];

			if (fe->d_name[0] == '.')
				continue;
			l = readlinkat(dirfd(fdd), fe->d_name, link, sizeof link - 1);
			if (l < 0)
				continue;
			link[l] = '\0';
			if (strcmp(link, "anon_inode:inotify") != 0)
				continue;
			(*instances)++;
			snprintf(p, sizeof p, "%s/%s/fdinfo/%s", proc, pe->d_name, fe->d_name);
			if ((f = fopen(p, "re")) == NULL)
				continue;
			while (fgets(line, sizeof line, f) != NULL)
				if (strncmp(line, "inotify wd:", 11) == 0)
					(*watches)++;
			fclose(f);
		}
		closedir(fdd);
	}
	closedir(pd);
}

static void
check_inotify(struct sc *s)
{
	long long watches = read_sysctl(s, "fs/inotify/max_user_watches");
	long long instances = read_sysctl(s, "fs/inotify/max_user_instances");
	long long queued = read_sysctl(s, "fs/inotify/max_queued_events");
	unsigned long used_inst, used_watches;
	unsigned long long need;
	char n1[32], n2[64], n3[32], n4[32], b1[32];

	inotify_in_use(s, geteuid(), s->daemon_pid, &used_inst, &used_watches);
	need = (unsigned long long)s->dirs + used_watches;
	if (watches < 0) {
		say(s, SELFCHECK_WARNING, "fs.inotify.max_user_watches cannot be read: is this Linux "
		    "with inotify?");
	} else if (need > (unsigned long long)watches) {
		unsigned long long want = need + need / 4;

		say(s, SELFCHECK_ERROR, "fs.inotify.max_user_watches = %s is less than the %s under "
		    "the roots plus the %s watches other processes of this user "
		    "hold: the directories past it are not watched, only covered by rescans (every "
		    "backup then walks them); raise it: sysctl -w fs.inotify.max_user_watches=%llu, "
		    "and the same in a file of /etc/sysctl.d/ (each watched directory pins about "
		    "1.2 KiB of kernel memory: %s for these)", num((unsigned long long)watches, n1,
		    sizeof n1), dirs_str(s->dirs, s->dirs_more, n2, sizeof n2),
		    num(used_watches, n3, sizeof n3), want,
		    bytes((unsigned long long)s->dirs * 1229, b1, sizeof b1));
	} else if (s->dirs_more) {
		say(s, SELFCHECK_WARNING, "fs.inotify.max_user_watches = %s: there are %s under the "
		    "roots (counting stopped there), so whether it is enough cannot be told; the "
		    "daemon logs an error naming it when it is reached",
		    num((unsigned long long)watches, n1, sizeof n1), dirs_str(s->dirs, 1, n2, sizeof n2));
	} else if (need > (unsigned long long)watches / 10 * 9) {
		say(s, SELFCHECK_WARNING, "fs.inotify.max_user_watches = %s is barely more than the "
		    "%s under the roots plus the %s watches other processes of this user "
		    "hold: a spool that grows by a tenth reaches it; raise it (sysctl -w "
		    "fs.inotify.max_user_watches=%llu, and in /etc/sysctl.d/)",
		    num((unsigned long long)watches, n1, sizeof n1), dirs_str(s->dirs, 0, n2, sizeof n2),
		    num(used_watches, n3, sizeof n3), need * 2);
	} else {
		say(s, SELFCHECK_OK, "fs.inotify.max_user_watches = %s: enough for the %s under the "
		    "roots (one watch each, about %s of kernel memory) and the %s watches other "
		    "processes of this user hold", num((unsigned long long)watches, n1, sizeof n1),
		    dirs_str(s->dirs, 0, n2, sizeof n2), bytes((unsigned long long)s->dirs * 1229, b1, sizeof b1),
		    num(used_watches, n4, sizeof n4));
	}
	if (instances >= 0 && used_inst + 1 > (unsigned long long)instances)
		say(s, SELFCHECK_ERROR, "fs.inotify.max_user_instances = %s: other processes of this "
		    "user hold %s inotify instances already: the daemon cannot open its own; raise it "
		    "(sysctl -w fs.inotify.max_user_instances=%lu, and in /etc/sysctl.d/)",
		    num((unsigned long long)instances, n1, sizeof n1), num(used_inst, n2, sizeof n2),
		    (unsigned long)(used_inst + 1) * 2);
	else if (instances >= 0 && used_inst + 1 > (unsigned long long)instances / 10 * 9)
		say(s, SELFCHECK_WARNING, "fs.inotify.max_user_instances = %s: other processes of this "
		    "user hold %s inotify instances: few are left", num((unsigned long long)instances,
		    n1, sizeof n1), num(used_inst, n2, sizeof n2));
	else if (instances >= 0)
		say(s, SELFCHECK_OK, "fs.inotify.max_user_instances = %s: the daemon needs one; other "
		    "processes of this user hold %s", num((unsigned long long)instances, n1, sizeof n1),
		    num(used_inst, n2, sizeof n2));
	if (queued >= 0 && queued < 16384)
		say(s, SELFCHECK_WARNING, "fs.inotify.max_queued_events = %s, below the kernel's "
		    "default of 16,384: queue overflows (each a rescan of every root) come sooner; "
		    "raise it (sysctl -w fs.inotify.max_queued_events=1048576, and in /etc/sysctl.d/)",
		    num((unsigned long long)queued, n1, sizeof n1));
	else if (queued >= 0)
		say(s, SELFCHECK_OK, "fs.inotify.max_queued_events = %s: events the kernel queues "
		    "before an overflow (a rescan of every root); raise it if the log shows overflows",
		    num((unsigned long long)queued, n1, sizeof n1));
}

/* Tries fanotify on each root's file system. Returns 1 when every existing
 * root takes a mark, 0 with e (why not). */
static int
fanotify_works(struct sc *s, struct chj_error *e, size_t *bad_root)
{
	size_t i;
	int any = 0;

	chj_error_clear(e);
	for (i = 0; i < s->cfg->nroots; i++) {
		if (config_root_missing(s->cfg, i) != 0)
			continue;
		any = 1;
		if (fanprobe_root(s->cfg->roots[i], e) < 0) {
			*bad_root = i;
			return 0;
		}
	}
	if (!any)
		chj_error_set(e, CHJ_ERR_NOTFOUND, 0, "no root exists to try it on");
	return any;
}

/* Returns 1 when the daemon would use inotify. */
static int
check_backend(struct sc *s)
{
	const struct config *c = s->cfg;
	char w[PATH_MAX + 128], n1[32];
	struct chj_error refusal;
	const char *why = refusal.msg;
	size_t bad = 0;
	int works = fanotify_works(s, &refusal, &bad);
	long long fq = read_sysctl(s, "fs/fanotify/max_queued_events");

	where(s, c->backend_line, "backend", w, sizeof w);
	switch (c->backend) {
	case CONFIG_BACKEND_FANOTIFY:
		if (!works) {
			say(s, SELFCHECK_ERROR, "%s: fanotify is refused here (as this process): %s: the "
			    "daemon would stop with this error (backend = auto would use inotify)", w, why);
			return 0;
		}
		say(s, SELFCHECK_OK, "%s: fanotify: the file system of every root takes a mark (as "
		    "this process: under the systemd unit it needs CAP_SYS_ADMIN too)", w);
		break;
	case CONFIG_BACKEND_AUTO:
		if (!works) {
			say(s, SELFCHECK_OK, "%s: auto would use inotify: %s", w, why);
			return 1;
		}
		say(s, SELFCHECK_OK, "%s: auto would use fanotify: the file system of every root "
		    "takes a mark (as this process: under the systemd unit, only with CAP_SYS_ADMIN "
		    "added; else inotify)", w);
		break;
	default:
		if (works)
			say(s, SELFCHECK_OK, "%s: inotify (fanotify would also work here: no crawl, kernel "
			    "memory flat in the tree's size)", w);
		else
			say(s, SELFCHECK_OK, "%s: inotify (fanotify would not: %s)", w, why);
		return 1;
	}
	if (fq >= 0 && fq < 16384)
		say(s, SELFCHECK_WARNING, "fs.fanotify.max_queued_events = %s, below the kernel's "
		    "default of 16,384: queue overflows (each a rescan of every root) come sooner",
		    num((unsigned long long)fq, n1, sizeof n1));
	else if (fq >= 0)
		say(s, SELFCHECK_OK, "fs.fanotify.max_queued_events = %s: events the kernel queues "
		    "before an overflow (a rescan of every root); raise it if the log shows overflows",
		    num((unsigned long long)fq, n1, sizeof n1));
	return 0;
}

/* ---- the journal and the consumers ---- */

static void
check_space(struct sc *s, const char *dir, const char *w)
{
	uint64_t warn = s->o->free_warn ? s->o->free_warn : SELFCHECK_FREE_WARN;
	uint64_t err = s->o->free_error ? s->o->free_error : SELFCHECK_FREE_ERROR;
	struct statvfs sv;
	unsigned long long avail;
	char b1[32], b2[32], n1[32];

	if (statvfs(dir, &sv) < 0) {
		say(s, SELFCHECK_ERROR, "%s: cannot look at the file system of '%s': %s", w, dir,
		    strerror(errno));
		return;
	}
	avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	if (sv.f_flag & ST_RDONLY)
		say(s, SELFCHECK_ERROR, "%s: '%s' is on a read-only file system: the journal cannot "
		    "be written", w, dir);
	else if (avail < err)
		say(s, SELFCHECK_ERROR, "%s: only %s free on the file system of '%s' (less than %s): "
		    "the journal will soon not be written (changes then wait in memory, then become "
		    "a rescan of every root)", w, bytes(avail, b1, sizeof b1), dir,
		    bytes(err, b2, sizeof b2));
	else if (avail < warn)
		say(s, SELFCHECK_WARNING, "%s: %s free on the file system of '%s' (less than %s): the "
		    "journal holds every change not yet backed up", w, bytes(avail, b1, sizeof b1), dir,
		    bytes(warn, b2, sizeof b2));
	else
		say(s, SELFCHECK_OK, "%s: %s free on the file system of '%s'", w,
		    bytes(avail, b1, sizeof b1), dir);
	if (sv.f_files > 0 && sv.f_favail < 100)
		say(s, SELFCHECK_ERROR, "%s: only %s inodes free on the file system of '%s': the "
		    "journal's files cannot be created", w, num(sv.f_favail, n1, sizeof n1), dir);
}

static void
check_journal(struct sc *s)
{
	const struct config *c = s->cfg;
	struct chj_error err;
	char w[PATH_MAX + 128], n1[32], n2[32];
	char *jdir = path_dirname(c->journal), *pdir = NULL;
	struct stat st;
	int daemon = s->o->role == SELFCHECK_DAEMON, rc;
	pid_t pid;

	where(s, c->journal_line, "journal", w, sizeof w);
	if (jdir == NULL)
		return;
	/* its directory: the daemon creates one level */
	if (stat(jdir, &st) < 0) {
		pdir = path_dirname(jdir);
		if (errno == ENOENT && pdir != NULL && stat(pdir, &st) == 0 && S_ISDIR(st.st_mode) &&
		    daemon) {
			say(s, SELFCHECK_OK, "%s: the directory '%s' does not exist yet: the daemon "
			    "creates it", w, jdir);
			check_space(s, pdir, w);
		} else if (errno == ENOENT && daemon) {
			say(s, SELFCHECK_ERROR, "%s: neither '%s' nor its parent exist: the daemon "
			    "creates one level only", w, jdir);
		} else {
			say(s, SELFCHECK_ERROR, "%s: cannot use the directory '%s': %s%s", w, jdir,
			    strerror(errno), daemon ? "" : " (has chjournald ever run with this "
			    "configuration?)");
		}
		free(pdir);
		free(jdir);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		say(s, SELFCHECK_ERROR, "%s: '%s' is not a directory", w, jdir);
		free(jdir);
		return;
	}
	if (daemon && access(jdir, W_OK | X_OK) < 0)
		say(s, SELFCHECK_ERROR, "%s: the directory '%s' is not writable by this user (%s): "
		    "the daemon creates the journal and its lock there", w, jdir, strerror(errno));
	check_space(s, jdir, w);
	free(jdir);

	/* the journal itself */
	if (lstat(c->journal, &st) < 0) {
		if (errno == ENOENT && daemon)
			say(s, SELFCHECK_OK, "%s: '%s' does not exist yet: the daemon creates it (every "
			    "consumer's first run is then full)", w, c->journal);
		else
			say(s, SELFCHECK_ERROR, "%s: cannot use '%s': %s%s", w, c->journal, strerror(errno),
			    errno == ENOENT ? " (has chjournald ever run with this configuration?)" : "");
	} else if (!S_ISREG(st.st_mode)) {
		say(s, SELFCHECK_ERROR, "%s: '%s' is not a regular file", w, c->journal);
	} else {
		struct journal *j = journal_new();

		if (j == NULL)
			return;
		if (journal_open(j, c->journal, JOURNAL_READONLY) < 0) {
			say(s, SELFCHECK_ERROR, "%s: %s: %s", w, journal_errmsg(j), daemon ?
			    "the daemon cannot use it (move it away: a new journal makes every "
			    "consumer's next run full)" : "no command can use it");
		} else {
			int64_t last = 0, rows = 0, rescans = 0, flush = 0;

			journal_last_seq(j, &last);
			journal_count_changes(j, 0, &rows);
			journal_count_rescans(j, 0, &rescans);
			journal_meta_get_int(j, "last_flush", &flush);
			say(s, SELFCHECK_OK, "%s: '%s': a journal of schema %d, id %s, last seq %" PRId64
			    ", %s rows, %s rescan records", w, c->journal, JOURNAL_SCHEMA_VERSION,
			    journal_id(j), last, num((unsigned long long)rows, n1, sizeof n1),
			    num((unsigned long long)rescans, n2, sizeof n2));
			if (!daemon && access(c->journal, W_OK) < 0)
				say(s, SELFCHECK_ERROR, "%s: '%s' is not writable by this user (%s): begin "
				    "and sync write to it (status and query only read it)", w, c->journal,
				    strerror(errno));
		}
		journal_free(j);
		if (c->group != NULL && (st.st_gid != c->gid || !(st.st_mode & 0040)))
			say(s, SELFCHECK_WARNING, "%s: '%s' is not readable by group '%s' yet: the daemon "
			    "makes the state readable by it when it starts or reloads", w, c->journal,
			    c->group);
	}
	rc = daemonlock_probe(c->journal, &pid, &err);
	if (rc < 0)
		say(s, SELFCHECK_ERROR, "%s: %s", w, err.msg);
	else if (rc == 1)
		say(s, SELFCHECK_OK, "%s: a daemon runs on it (pid %ld)", w, (long)pid);
	else
		say(s, daemon ? SELFCHECK_OK : SELFCHECK_WARNING, "%s: no daemon runs on it%s", w,
		    daemon ? "" : ": begin covers the time since its last flush with a rescan of "
		    "every root, and sync fails");
}

static void
check_consumers(struct sc *s)
{
	const struct config *c = s->cfg;
	struct consumers cs;
	char w[PATH_MAX + 128], n1[32], n2[32];
	char **names = NULL;
	size_t n = 0, i, open_runs = 0, bad = 0;
	struct stat st;
	int daemon = s->o->role == SELFCHECK_DAEMON;

	where(s, c->consumers_line, "consumers", w, sizeof w);
	if (stat(c->consumers, &st) < 0) {
		if (errno == ENOENT)
			say(s, SELFCHECK_OK, "%s: '%s' does not exist yet: the daemon and begin create "
			    "it", w, c->consumers);
		else
			say(s, SELFCHECK_ERROR, "%s: cannot use '%s': %s", w, c->consumers, strerror(errno));
		return;
	}
	if (!daemon && access(c->consumers, W_OK | X_OK) < 0)
		say(s, SELFCHECK_ERROR, "%s: '%s' is not writable by this user (%s): begin, commit and "
		    "abort write the cursors there", w, c->consumers, strerror(errno));
	if (consumers_open(&cs, c->consumers, 0) < 0) {
		say(s, SELFCHECK_ERROR, "%s: %s", w, cs.err.msg);
		consumers_close(&cs);
		return;
	}
	if (consumer_list(&cs, &names, &n) < 0) {
		say(s, SELFCHECK_ERROR, "%s: %s", w, cs.err.msg);
		consumers_close(&cs);
		return;
	}
	for (i = 0; i < n; i++) {
		struct consumer_state cst;

		if (consumer_load(&cs, names[i], &cst) != 0) {
			say(s, SELFCHECK_ERROR, "%s: %s: status exits 1, and the consumer's runs fail "
			    "until it is fixed or forgotten", w, cs.err.msg);
			bad++;
			continue;
		}
		open_runs += cst.has_open != 0;
	}
	say(s, SELFCHECK_OK, "%s: '%s': %s consumers (%s with an open run)", w, c->consumers,
	    num(n - bad, n1, sizeof n1), num(open_runs, n2, sizeof n2));
	consumer_list_free(names, n);
	consumers_close(&cs);
}

/* ---- all of it ---- */

int
selfcheck_run(const char *config_file, const struct selfcheck_opts *o, selfcheck_fn fn,
    void *ctx, struct chj_error *e)
{
	struct config cfg;
	struct sc s;
	char exported[8192] = "";
	size_t i;
	int nerr, inotify;

	memset(&s, 0, sizeof s);
	s.o = o;
	s.fn = fn;
	s.ctx = ctx;
	s.walk_limit = o->dir_limit ? o->dir_limit : SELFCHECK_DIR_LIMIT;
	chj_error_clear(e);
	nerr = config_check(&cfg, config_file, config_finding, &s);
	if (nerr != 0)
		return s.worst;          /* the machine is checked once the file is valid */
	s.cfg = &cfg;
	say(&s, SELFCHECK_OK, "%s: the configuration is valid: %zu root%s, %zu exclude%s, backend %s%s%s",
	    config_file, cfg.nroots, cfg.nroots == 1 ? "" : "s", cfg.nexcludes,
	    cfg.nexcludes == 1 ? "" : "s", config_backend_name(cfg.backend),
	    cfg.group ? ", readable by group " : "", cfg.group ? cfg.group : "");
	{
		struct chj_error err;
		pid_t pid = 0;

		if (daemonlock_probe(cfg.journal, &pid, &err) == 1)
			s.daemon_pid = pid;
	}
	s.have_mounts = mount_table_read(&s.mounts, -1) == 0;
	if (o->nfs_table != NULL) {
		nfsexport_roots(&cfg, o->nfs_table, exported, sizeof exported);
	} else {
		for (i = 0; nfsexport_tables[i] != NULL; i++)
			nfsexport_roots(&cfg, nfsexport_tables[i], exported, sizeof exported);
	}
	for (i = 0; i < cfg.nroots; i++)
		check_root(&s, i, exported);
	inotify = check_backend(&s);
	if (inotify)
		check_inotify(&s);
	check_journal(&s);
	check_consumers(&s);
	if (s.have_mounts)
		mount_table_free(&s.mounts);
	config_free(&cfg);
	return s.worst;
}
