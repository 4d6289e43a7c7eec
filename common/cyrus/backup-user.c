/* backup-user.c: one user's run of a Cyrus backup (backup.h): pass one
 * compares each folder's meta files with their archived copies by size and
 * mtime; a folder that differs is read under the locks a Cyrus reader takes,
 * and every message its index references that the archive lacks is stored
 * under its SHA1 (checked against the GUID); then the folder-name links,
 * the per-user files and the manifest. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive/archive.h"
#include "archive/manifest.h"
#include "array.h"
#include "cyrus/backup-int.h"
#include "path.h"

/* What one user's run has added so far: SHA1s (so a message in two folders
 * is stored once) and whether anything was added at all. */
struct user_run {
	struct arch *ar;
	/* few next to the archive's: searching them one by one costs little
	 * next to reading a message */
	struct strvec sha1s;
	unsigned long added;
	struct manifest man;
	struct chj_error err;
};

static int64_t
stat_mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Hashes fd from its start; leaves it at its start again. */
static int
sha1_fd(int fd, unsigned char *digest, uint64_t *size)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char buf[65536];
	ssize_t n;
	int rc = -1;

	*size = 0;
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1)
		goto out;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		*size += (uint64_t)n;
	}
	if (n < 0 || EVP_DigestFinal_ex(ctx, digest, NULL) != 1)
		goto out;
	if (lseek(fd, 0, SEEK_SET) < 0)
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* Reads all of fd (from offset 0) into memory; *st is its fstat. */
static int
read_fd_whole(int fd, char **buf, size_t *len, struct stat *st)
{
	size_t got = 0;

	*buf = NULL;
	if (fstat(fd, st) < 0)
		return -1;
	if (!S_ISREG(st->st_mode)) {
		errno = EINVAL;
		return -1;
	}
	*buf = malloc((size_t)st->st_size + 1);
	if (*buf == NULL)
		return -1;
	while (got < (size_t)st->st_size) {
		ssize_t n = pread(fd, *buf + got, (size_t)st->st_size - got, (off_t)got);

		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			free(*buf);
			*buf = NULL;
			return -1;
		}
		got += (size_t)n;
	}
	*len = got;
	return 0;
}

/* Reads a whole file into memory; *st is its fstat. ENOENT is returned as 1. */
static int
read_whole(const char *path, char **buf, size_t *len, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;

	*buf = NULL;
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	rc = read_fd_whole(fd, buf, len, st);
	close(fd);
	return rc;
}

/* 1 when the archive's newest copy of name has this size and mtime. */
static int
archived_same(struct arch *ar, const char *name, const struct stat *st)
{
	struct arch_entry e;
	int r = arch_latest(ar, name, 0, &e), same;

	if (r <= 0)
		return 0;
	same = e.kind == ARCH_KIND_FILE && e.size == (uint64_t)st->st_size &&
	    e.mtime_ns == stat_mtime_ns(st);
	arch_entry_free(&e);
	return same;
}

/* Pass one: 1 when every meta file of m matches its archived copy. */
static int
meta_unchanged(struct arch *ar, const struct cyrus_mailbox *m)
{
	char name[512];
	size_t i;

	for (i = 0; i < CYRUS_NMETA; i++) {
		char *p = path_join(m->path, cyrus_meta_names[i]);
		struct stat st;
		int exists;

		if (p == NULL)
			return 0;
		exists = stat(p, &st) == 0;
		free(p);
		snprintf(name, sizeof name, ARCH_FOLDERS "%s/%s", m->uniqueid, cyrus_meta_names[i]);
		if (!exists) {
			if (arch_has(ar, name) == 1 && i <= CYRUS_META_INDEX)
				return 0;
			continue;
		}
		if (!archived_same(ar, name, &st))
			return 0;
	}
	return 1;
}

/* Stores one message file under files/<sha1> unless the archive has it. */
static int
store_message(struct cyrus_backup *b, struct user_run *r, const struct cyrus_mailbox *m,
    const struct cyrus_index_record *rec)
{
	unsigned char digest[20];
	static const unsigned char zero[20];
	char hex[41], name[64], file[32], *path;
	uint64_t size;
	struct stat st;
	int fd, have, rc = -1;

	if (memcmp(rec->guid, zero, 20) != 0) {
		cyrus_guid_hex(rec->guid, hex);
		if (strvec_has(&r->sha1s, hex))
			return 0;
		snprintf(name, sizeof name, ARCH_FILES "%s", hex);
		have = arch_has(r->ar, name);
		if (have < 0)
			return chj_error_set(&r->err, CHJ_ERR_ARCHIVE, 0, "%s", arch_error(r->ar));
		if (have)
			return 0;
	}
	snprintf(file, sizeof file, "%u.", rec->uid);
	path = path_join(m->path, file);
	if (path == NULL)
		return chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && (rec->system_flags & CYRUS_FLAG_EXPUNGED)) {
			rc = 0;     /* expunged and removed by cyr_expire since the index was read */
			goto out;
		}
		chj_error_set(&r->err, CHJ_ERR_SYS, errno, "mailbox '%s': cannot read message '%s'",
		    m->name, path);
		goto out;
	}
	if (fstat(fd, &st) < 0 || sha1_fd(fd, digest, &size) < 0) {
		chj_error_set(&r->err, CHJ_ERR_SYS, errno, "mailbox '%s': cannot read message '%s'",
		    m->name, path);
		goto out;
	}
	if (memcmp(rec->guid, zero, 20) != 0 && memcmp(digest, rec->guid, 20) != 0) {
		char want[41], got[41];

		cyrus_guid_hex(rec->guid, want);
		cyrus_guid_hex(digest, got);
		chj_error_set(&r->err, CHJ_ERR_CORRUPT, 0, "mailbox '%s': message '%s': SHA1 %s does "
		    "not match the GUID %s in cyrus.index", m->name, path, got, want);
		goto out;
	}
	cyrus_guid_hex(digest, hex);
	if (strvec_has(&r->sha1s, hex)) {
		rc = 0;
		goto out;
	}
	snprintf(name, sizeof name, ARCH_FILES "%s", hex);
	if (arch_run_add_fd(r->ar, name, fd, size, stat_mtime_ns(&st), 0600) < 0) {
		chj_error_set(&r->err, CHJ_ERR_ARCHIVE, 0, "%s", arch_error(r->ar));
		goto out;
	}
	if (strvec_add(&r->sha1s, hex) < 0) {
		chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	r->added++;
	b->stats.messages++;
	b->stats.bytes += size;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

struct meta_copy {
	char *buf[CYRUS_NMETA];
	size_t len[CYRUS_NMETA];
	struct stat st[CYRUS_NMETA];
	int present[CYRUS_NMETA];
};

static void
meta_copy_free(struct meta_copy *mc)
{
	size_t i;

	for (i = 0; i < CYRUS_NMETA; i++)
		free(mc->buf[i]);
}

/* Reads the meta files of m while holding the lock a Cyrus reader holds, so
 * the index and header are one consistent state. */
static int
read_meta_locked(struct cyrus_backup *b, struct user_run *r, const struct cyrus_mailbox *m,
    struct meta_copy *mc)
{
	struct cyrus_lock lk;
	size_t i;
	int rc = -1;

	memset(mc, 0, sizeof *mc);
	if (cyrus_lock_mailbox(&lk, &b->cc, m, b->lock_timeout_ms) < 0)
		return chj_error_set(&r->err, CHJ_ERR_SYS, 0, "mailbox '%s': %s", m->name, lk.err);
	for (i = 0; i < CYRUS_NMETA; i++) {
		char *p = path_join(m->path, cyrus_meta_names[i]);
		int rr;

		if (p == NULL) {
			chj_error_set(&r->err, CHJ_ERR_NOMEM, 0, "out of memory");
			goto out;
		}
		/* the index through the locked fd: closing another fd of it
		 * would drop this process's fcntl lock */
		if (i == CYRUS_META_INDEX)
			rr = read_fd_whole(lk.fd, &mc->buf[i], &mc->len[i], &mc->st[i]);
		else
			rr = read_whole(p, &mc->buf[i], &mc->len[i], &mc->st[i]);
		if (rr < 0 || (rr == 1 && i <= CYRUS_META_INDEX)) {
			chj_error_set(&r->err, CHJ_ERR_SYS, rr == 1 ? ENOENT : errno, "mailbox '%s': cannot "
			    "read '%s'", m->name, p);
			free(p);
			goto out;
		}
		mc->present[i] = rr == 0;
		free(p);
	}
	rc = 0;
out:
	cyrus_unlock(&lk);
	return rc;
}

/* Stores every message an index (or expunge file) references and lacks. */
static int
store_index_messages(struct cyrus_backup *b, struct user_run *r, const struct cyrus_mailbox *m,
    const char *what, const char *buf, size_t len)
{
	struct cyrus_index x;
	uint32_t i;
	int rc = -1;

	memset(&x, 0, sizeof x);
	if (cyrus_index_parse(&x, buf, len) < 0) {
		chj_error_set(&r->err, CHJ_ERR_CORRUPT, 0, "mailbox '%s': %s/%s: %s", m->name, m->path, what,
		    x.err);
		cyrus_index_free(&x);
		return -1;
	}
	for (i = 0; i < x.num_records; i++) {
		if (!cyrus_record_has_file(&x.records[i]))
			continue;
		if (store_message(b, r, m, &x.records[i]) < 0)
			goto out;
	}
	rc = 0;
out:
	cyrus_index_free(&x);
	return rc;
}

/* Backs up one folder: nothing when its meta files are as archived. */
static int
backup_folder(struct cyrus_backup *b, struct user_run *r, const struct cyrus_mailbox *m)
{
	struct meta_copy mc;
	struct cyrus_header h;
	size_t i;
	int rc = -1;

	if (manifest_add_folder(&r->man, m->uniqueid, m->partition, m->relpath, m->name) < 0)
		return chj_error_set(&r->err, CHJ_ERR_REFUSED, 0, "mailbox '%s': %s", m->name, r->man.err);
	if (meta_unchanged(r->ar, m))
		return 0;
	if (read_meta_locked(b, r, m, &mc) < 0)
		return -1;
	memset(&h, 0, sizeof h);
	if (cyrus_header_parse(&h, mc.buf[CYRUS_META_HEADER], mc.len[CYRUS_META_HEADER]) < 0) {
		chj_error_set(&r->err, CHJ_ERR_CORRUPT, 0, "mailbox '%s': %s/cyrus.header: %s", m->name,
		    m->path, h.err);
		goto out;
	}
	if (h.uniqueid != NULL && strcmp(h.uniqueid, m->uniqueid) != 0) {
		chj_error_set(&r->err, CHJ_ERR_CORRUPT, 0, "mailbox '%s': %s/cyrus.header names uniqueid "
		    "'%s', mailboxes.db '%s'", m->name, m->path, h.uniqueid, m->uniqueid);
		goto out;
	}
	if (store_index_messages(b, r, m, "cyrus.index", mc.buf[CYRUS_META_INDEX],
	    mc.len[CYRUS_META_INDEX]) < 0)
		goto out;
	if (mc.present[CYRUS_META_EXPUNGE] && store_index_messages(b, r, m, "cyrus.expunge",
	    mc.buf[CYRUS_META_EXPUNGE], mc.len[CYRUS_META_EXPUNGE]) < 0)
		goto out;
	for (i = 0; i < CYRUS_NMETA; i++) {
		char name[512];

		if (!mc.present[i])
			continue;
		snprintf(name, sizeof name, ARCH_FOLDERS "%s/%s", m->uniqueid, cyrus_meta_names[i]);
		if (arch_run_add_buf(r->ar, name, mc.buf[i], mc.len[i], stat_mtime_ns(&mc.st[i]), 0600) < 0) {
			chj_error_set(&r->err, CHJ_ERR_ARCHIVE, 0, "%s", arch_error(r->ar));
			goto out;
		}
		r->added++;
	}
	b->stats.folders_changed++;
	rc = 0;
out:
	cyrus_header_free(&h);
	meta_copy_free(&mc);
	return rc;
}

/* Adds symlink entry name -> target unless the newest copy says the same. */
static int
link_if_changed(struct user_run *r, const char *name, const char *target)
{
	struct arch_entry e;
	int got = arch_latest(r->ar, name, 0, &e), same = 0;

	if (got < 0)
		return chj_error_set(&r->err, CHJ_ERR_ARCHIVE, 0, "%s", arch_error(r->ar));
	if (got == 1) {
		same = e.kind == ARCH_KIND_SYMLINK && strcmp(e.target ? e.target : "", target) == 0;
		arch_entry_free(&e);
	}
	if (same)
		return 0;
	if (arch_run_add_symlink(r->ar, name, target, (int64_t)time(NULL) * 1000000000) < 0)
		return chj_error_set(&r->err, CHJ_ERR_ARCHIVE, 0, "%s", arch_error(r->ar));
	r->added++;
	return 0;
}

/* imap/<name> links: one per live folder, the empty link for each folder
 * the archive had that is gone (renamed away or deleted). */
static int
backup_links(struct user_run *r, const struct cyrus_mboxlist *ml)
{
	struct arch_entry *v = NULL;
	size_t n = 0, i;
	int rc = -1;

	for (i = 0; i < ml->n; i++) {
		const struct cyrus_mailbox *m = &ml->v[i];
		char name[1024], target[256];

		if (m->deleted)
			continue;
		snprintf(name, sizeof name, ARCH_IMAP "%s", m->name);
		snprintf(target, sizeof target, "../" ARCH_FOLDERS "%s", m->uniqueid);
		if (link_if_changed(r, name, target) < 0)
			return -1;
	}
	if (arch_list(r->ar, ARCH_IMAP, 0, &v, &n) < 0)
		return chj_error_set(&r->err, CHJ_ERR_ARCHIVE, 0, "%s", arch_error(r->ar));
	for (i = 0; i < n; i++) {
		const char *folder = v[i].name + strlen(ARCH_IMAP);

		if (v[i].target == NULL || v[i].target[0] == '\0')
			continue;
		if (manifest_find_folder(&r->man, folder) != NULL)
			continue;
		if (link_if_changed(r, v[i].name, "") < 0)
			goto out;
	}
	rc = 0;
out:
	arch_entries_free(v, n);
	return rc;
}

/* The archive name of a per-user file: user/conf/REL or user/sieve/REL. */
static char *
user_file_entry(const struct cyrus_conf *cc, const char *file)
{
	const char *base[2] = { cc->configdirectory, cc->sievedir };
	const char *kind[2] = { "conf", "sieve" };
	char *name = NULL;
	int i;

	for (i = 0; i < 2; i++) {
		size_t n;

		if (base[i] == NULL || !path_is_under(file, base[i]))
			continue;
		n = strlen(base[i]);
		if (file[n] != '/')
			continue;
		if (asprintf(&name, ARCH_USER "%s/%s", kind[i], file + n + 1) < 0)
			return NULL;
		return name;
	}
	return NULL;
}

static int
backup_user_file(struct user_run *r, const struct cyrus_conf *cc, const char *file)
{
	char *name = user_file_entry(cc, file), target[4096];
	struct stat st;
	int rc = -1, fd;

	if (name == NULL)
		return chj_error_set(&r->err, CHJ_ERR_REFUSED, 0, "'%s' is neither in the config "
		    "directory nor the sieve directory", file);
	if (lstat(file, &st) < 0) {
		rc = errno == ENOENT ? 0 : -1;  /* gone since it was listed: not in this run */
		if (rc < 0)
			chj_error_set(&r->err, CHJ_ERR_SYS, errno, "cannot read '%s'", file);
		goto out;
	}
	if (manifest_add_file(&r->man, name) < 0) {
		chj_error_set(&r->err, CHJ_ERR_REFUSED, 0, "'%s': %s", file, r->man.err);
		goto out;
	}
	if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlink(file, target, sizeof target - 1);

		if (n < 0) {
			chj_error_set(&r->err, CHJ_ERR_SYS, errno, "cannot read link '%s'", file);
			goto out;
		}
		target[n] = '\0';
		rc = link_if_changed(r, name, target);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || archived_same(r->ar, name, &st)) {
		rc = 0;
		goto out;
	}
	fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		chj_error_set(&r->err, CHJ_ERR_SYS, errno, "cannot read '%s'", file);
		if (fd >= 0)
			close(fd);
		goto out;
	}
	rc = arch_run_add_fd(r->ar, name, fd, (uint64_t)st.st_size, stat_mtime_ns(&st), 0600);
	close(fd);
	if (rc < 0)
		chj_error_set(&r->err, CHJ_ERR_ARCHIVE, 0, "%s", arch_error(r->ar));
	else
		r->added++;
out:
	free(name);
	return rc;
}

/* 1 when the new manifest shows the same state as the archive's last run. */
static int
same_as_last_run(struct user_run *r)
{
	struct arch_run *runs = NULL;
	struct manifest old;
	size_t n = 0;
	char *buf = NULL;
	size_t len = 0;
	int same = 0;

	if (arch_runs(r->ar, &runs, &n) < 0 || n == 0)
		goto out;
	if (arch_read_manifest(r->ar, runs[n - 1].id, &buf, &len) < 0)
		goto out;
	if (manifest_parse(&old, buf, len) < 0)
		goto out;
	same = manifest_same_state(&old, &r->man);
	manifest_free(&old);
out:
	free(buf);
	free(runs);
	return same;
}

/* The user's mailboxes ml: each live folder, the links, the user's files,
 * into the open run of r. */
static int
backup_user_state(struct cyrus_backup *b, struct user_run *r, const char *user,
    const struct cyrus_mboxlist *ml)
{
	char **ufiles = NULL;
	char err[CYRUS_ERR_MAX];
	size_t nufiles = 0, i;
	int rc = -1;

	for (i = 0; i < ml->n; i++) {
		if (ml->v[i].deleted)
			continue;
		if (backup_folder(b, r, &ml->v[i]) < 0)
			return -1;
	}
	if (backup_links(r, ml) < 0)
		return -1;
	if (cyrus_user_files(&b->cc, ml, user, &ufiles, &nufiles, err, sizeof err) < 0)
		return chj_error_set(&r->err, CHJ_ERR_SYS, 0, "%s", err);
	for (i = 0; i < nufiles; i++)
		if (backup_user_file(r, &b->cc, ufiles[i]) < 0)
			goto out;
	rc = 0;
out:
	for (i = 0; i < nufiles; i++)
		free(ufiles[i]);
	free(ufiles);
	return rc;
}

int
backup_user(struct cyrus_backup *b, const char *user, const struct cyrus_mboxlist *ml, int64_t seq,
    int *wrote, struct chj_error *e)
{
	struct cyrus_backup_event ev;
	struct user_run r;
	char err[ARCH_ERR_MAX], runname[64], *file = NULL, *archive = NULL, *buf = NULL;
	size_t len = 0;
	int rc = -1, began = 0;

	*wrote = 0;
	memset(&r, 0, sizeof r);
	manifest_init(&r.man);
	file = cyrus_user_file_name(user);
	if (file == NULL || asprintf(&archive, "%s/%s.tar.gz", b->to, file) < 0) {
		archive = NULL;
		chj_error_set(&r.err, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	if (arch_open(&r.ar, archive, ARCH_APPEND, err, sizeof err) < 0) {
		chj_error_set(&r.err, CHJ_ERR_ARCHIVE, 0, "%s", err);
		goto out;
	}
	if (arch_tail_cut(r.ar) > 0) {
		memset(&ev, 0, sizeof ev);
		ev.kind = CYRUS_BACKUP_TAIL_CUT;
		ev.user = user;
		ev.path = archive;
		ev.bytes_cut = arch_tail_cut(r.ar);
		backup_tell(b, &ev);
	}
	if (arch_run_begin(r.ar) < 0) {
		chj_error_set(&r.err, CHJ_ERR_ARCHIVE, 0, "%s", arch_error(r.ar));
		goto out;
	}
	began = 1;
	r.man.time = (int64_t)time(NULL);
	r.man.seq = seq;
	r.man.user = strdup(user);
	if (backup_user_state(b, &r, user, ml) < 0)
		goto out;
	if (manifest_format(&r.man, &buf, &len) < 0) {
		chj_error_set(&r.err, CHJ_ERR_REFUSED, 0, "%s", r.man.err);
		goto out;
	}
	if (r.added == 0 && same_as_last_run(&r)) {
		arch_run_abort(r.ar);
		began = 0;
		rc = 0;
		goto out;
	}
	began = 0;
	if (arch_run_commit(r.ar, buf, len, runname, sizeof runname) < 0) {
		chj_error_set(&r.err, CHJ_ERR_ARCHIVE, 0, "%s", arch_error(r.ar));
		goto out;
	}
	*wrote = 1;
	rc = 0;
out:
	if (began)
		arch_run_abort(r.ar);
	if (r.ar != NULL && arch_close(r.ar) < 0 && rc == 0) {
		chj_error_set(&r.err, CHJ_ERR_ARCHIVE, 0, "archive '%s': cannot close it", archive);
		rc = -1;
	}
	if (rc < 0)
		*e = r.err;
	strvec_free(&r.sha1s);
	manifest_free(&r.man);
	free(buf);
	free(archive);
	free(file);
	return rc;
}
