/* livestatus.c: the daemon's live figures (livestatus.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "livestatus.h"

struct livestatus_writer {
	int fd;
	struct livestatus *rec;
};

/* "<journal>.status", newly allocated, NULL on ENOMEM. */
static char *
status_path(const char *journal)
{
	size_t n = strlen(journal);
	char *p = malloc(n + sizeof LIVESTATUS_SUFFIX);

	if (p != NULL) {
		memcpy(p, journal, n);
		memcpy(p + n, LIVESTATUS_SUFFIX, sizeof LIVESTATUS_SUFFIX);
	}
	return p;
}

struct livestatus_writer *
livestatus_open(const char *journal, struct chj_error *e)
{
	struct livestatus_writer *w = calloc(1, sizeof *w);
	struct livestatus zero;
	char *p = status_path(journal);
	void *m;

	if (w == NULL || p == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		goto fail;
	}
	w->fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (w->fd < 0 || fchmod(w->fd, 0644) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot open status file '%s'", p);
		goto fail;
	}
	/* written whole now: later updates land in blocks the file has */
	memset(&zero, 0, sizeof zero);
	if (ftruncate(w->fd, 0) < 0 || pwrite(w->fd, &zero, sizeof zero, 0) != (ssize_t)sizeof zero ||
	    fsync(w->fd) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot write status file '%s'", p);
		goto fail;
	}
	m = mmap(NULL, sizeof *w->rec, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);
	if (m == MAP_FAILED) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot map status file '%s'", p);
		goto fail;
	}
	w->rec = m;
	w->rec->magic = LIVESTATUS_MAGIC;
	w->rec->version = LIVESTATUS_VERSION;
	free(p);
	return w;
fail:
	if (w != NULL && w->fd >= 0)
		close(w->fd);
	free(w);
	free(p);
	return NULL;
}

struct livestatus *
livestatus_begin(struct livestatus_writer *w)
{
	w->rec->seq++;
	atomic_thread_fence(memory_order_release);
	return w->rec;
}

void
livestatus_end(struct livestatus_writer *w)
{
	atomic_thread_fence(memory_order_release);
	w->rec->seq++;
}

void
livestatus_close(struct livestatus_writer *w)
{
	if (w == NULL)
		return;
	if (w->rec != NULL)
		munmap(w->rec, sizeof *w->rec);
	if (w->fd >= 0)
		close(w->fd);
	free(w);
}

int
livestatus_read(const char *journal, struct livestatus *out, struct chj_error *e)
{
	char *p = status_path(journal);
	int fd, tries, rc = -1;
	uint64_t seq;

	if (p == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? 0 : chj_error_set(e, CHJ_ERR_SYS, errno,
		    "cannot read status file '%s'", p);
		free(p);
		return rc;
	}
	/* a copy taken between two updates: the count even and the same */
	for (tries = 0; tries < 1000; tries++) {
		if (pread(fd, out, sizeof *out, 0) != (ssize_t)sizeof *out) {
			rc = 0;              /* short: being made, or an older file */
			goto done;
		}
		seq = out->seq;
		atomic_thread_fence(memory_order_acquire);
		if (seq % 2 == 0) {
			struct livestatus again;

			if (pread(fd, &again, sizeof again, 0) == (ssize_t)sizeof again &&
			    again.seq == seq) {
				rc = out->magic == LIVESTATUS_MAGIC && out->version == LIVESTATUS_VERSION;
				goto done;
			}
		}
		usleep(100);
	}
	rc = chj_error_set(e, CHJ_ERR_CORRUPT, 0, "status file '%s' keeps changing", p);
done:
	close(fd);
	free(p);
	return rc;
}

const char *
livestatus_state_name(uint32_t state)
{
	static const char *const names[] = { "starting", "crawling", "ready", "stopped" };

	return state < sizeof names / sizeof names[0] ? names[state] : "unknown";
}
