/* handover.c: the mechanics of chjournald's restart in place (handover.h):
 * the memfd, the descriptors kept across the exec, the environment. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handover.h"

/* Sets or clears FD_CLOEXEC on fd. */
static int
set_cloexec(int fd, int on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC);
}

int
handover_take_env(struct handover *h, struct chj_error *e)
{
	const char *v = getenv(HANDOVER_ENV);
	int n;

	h->state_fd = h->lock_fd = h->watch_fd = -1;
	if (v == NULL)
		return 0;
	n = sscanf(v, "state=%d lock=%d watch=%d", &h->state_fd, &h->lock_fd, &h->watch_fd);
	unsetenv(HANDOVER_ENV);
	if (n != 3 || h->state_fd < 0 || h->lock_fd < 0 || h->watch_fd < 0) {
		return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "malformed %s", HANDOVER_ENV);
	}
	/* a descriptor that is not open is found out by its use */
	set_cloexec(h->state_fd, 1);
	set_cloexec(h->lock_fd, 1);
	set_cloexec(h->watch_fd, 1);
	return 1;
}

int
handover_read_state(int fd, struct statebuf *b, struct chj_error *e)
{
	struct stat st;
	unsigned char *data;
	size_t got = 0;

	if (fstat(fd, &st) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "the state descriptor %d is not a file", fd);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		chj_error_set(e, CHJ_ERR_CORRUPT, 0, "the state descriptor %d is not a file: "
		    "not a regular file", fd);
		close(fd);
		return -1;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory reading %lld bytes of state",
		    (long long)st.st_size);
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = pread(fd, data + got, (size_t)st.st_size - got, (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0)
				chj_error_set(e, CHJ_ERR_SYS, errno, "cannot read the state");
			else
				chj_error_set(e, CHJ_ERR_CORRUPT, 0,
				    "cannot read the state: shorter than its size");
			free(data);
			close(fd);
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	statebuf_init_read(b, data, got);
	return 0;
}

/* Writes len bytes of buf to fd. Returns 0, or -1 with errno. */
static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int
handover_exec(const char *exe, char *const argv[], int lock_fd, int watch_fd,
    const void *state, size_t len, struct chj_error *e)
{
	char env[96];
	int mfd;

	/* not MFD_CLOEXEC: the next process reads it */
	if ((mfd = memfd_create("chjournald-handover", 0)) < 0)
		return chj_error_set(e, CHJ_ERR_SYS, errno, "cannot create a memfd for the state");
	if (write_all(mfd, state, len) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot write %zu bytes of state", len);
		close(mfd);
		return -1;
	}
	snprintf(env, sizeof env, "state=%d lock=%d watch=%d", mfd, lock_fd, watch_fd);
	if (set_cloexec(lock_fd, 0) < 0 || set_cloexec(watch_fd, 0) < 0 ||
	    setenv(HANDOVER_ENV, env, 1) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot pass the descriptors on");
		goto undo;
	}
	execv(exe, argv);
	chj_error_set(e, CHJ_ERR_SYS, errno, "cannot execute '%s'", exe);
undo:
	unsetenv(HANDOVER_ENV);
	set_cloexec(lock_fd, 1);
	set_cloexec(watch_fd, 1);
	close(mfd);
	return -1;
}

int
handover_fd_is(int fd, const char *kind)
{
	char proc[64], link[PATH_MAX];
	ssize_t n;

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if ((n = readlink(proc, link, sizeof link - 1)) < 0)
		return 0;
	link[n] = '\0';
	return strncmp(link, "anon_inode:", 11) == 0 && strcmp(link + 11, kind) == 0;
}
