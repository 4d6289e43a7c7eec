/* change-probe.c: makes the changes t0120-change-matrix measures that no
 * shell tool makes: an exchange, writes through a shared mapping, Linux
 * native AIO, O_TMPFILE + linkat, open_by_handle_at, copy_file_range,
 * sendfile, splice, FICLONE, io_uring. Its arguments are a script of steps run in
 * order on one current descriptor and mapping:
 *
 *   change-probe [-c CTLDIR] STEP [ARG]...
 *
 *   open PATH        open PATH read-write (the current descriptor)
 *   tmpfile DIR      an O_TMPFILE file in DIR (the current descriptor)
 *   linkat PATH      link the current (O_TMPFILE) file at PATH
 *   handle-save PATH FILE    write PATH's file handle into FILE
 *   handle-open DIR FILE     open_by_handle_at() of FILE's handle, read-write,
 *                    on DIR's file system (the current descriptor)
 *   close            close the current descriptor
 *   mmap             map the current file shared, read-write (one page at least)
 *   mwrite TEXT      copy TEXT to the start of the mapping
 *   munmap           unmap it
 *   write TEXT       write(2) TEXT at the current offset
 *   pwrite TEXT      pwrite(2) TEXT at offset 0
 *   aio TEXT         TEXT at offset 0 by io_setup/io_submit/io_getevents
 *   uring TEXT       TEXT at offset 0 by an io_uring IORING_OP_WRITE
 *   path             print the current descriptor's path (/proc/self/fd) on
 *                    stdout: "/" for a disconnected file (no name known)
 *   copy-range SRC   copy_file_range(2) of SRC's bytes to the current offset
 *   sendfile SRC     sendfile(2) of SRC's bytes to the current offset
 *   splice SRC       SRC's bytes through a pipe, splice(2) to the current offset
 *   clone SRC        ioctl(FICLONE) of SRC onto the current file
 *   exchange A B     renameat2(A, B, RENAME_EXCHANGE)
 *   sync             the handshake: create CTLDIR/ready.N, then wait (at most
 *                    60 s) until CTLDIR/go.N exists (N counts from 1)
 *
 * Exits 0, 1 on an error (named on stderr), 77 when the kernel or file system
 * does not support a step (the test skips that kind of change). */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define EXIT_UNSUPPORTED 77
#define HANDLE_MAX 128
#define SYNC_TIMEOUT_MS 60000

struct probe {
	const char *ctl;        /* handshake directory */
	int sync_n;             /* handshakes done */
	int fd;                 /* the current descriptor, -1 */
	char *map;              /* the current mapping, NULL */
	size_t maplen;
};

static int
fail(const char *step, const char *subject)
{
	fprintf(stderr, "change-probe: %s '%s': %s\n", step, subject, strerror(errno));
	return 1;
}

/* A step the kernel or the file system refuses as not supported: 77. */
static int
fail_or_unsupported(const char *step, const char *subject)
{
	int e = errno;

	fail(step, subject);
	return e == EOPNOTSUPP || e == ENOSYS || e == EXDEV || e == EINVAL || e == ENOTTY ?
	    EXIT_UNSUPPORTED : 1;
}

static int
need_fd(const struct probe *p, const char *step)
{
	if (p->fd >= 0)
		return 0;
	fprintf(stderr, "change-probe: %s: no open file\n", step);
	return -1;
}

/* Creates ctl/ready.N, waits for ctl/go.N. */
static int
handshake(struct probe *p)
{
	char ready[4096], go[4096];
	struct timespec tick = { 0, 5 * 1000 * 1000 };
	int fd, waited;

	if (p->ctl == NULL) {
		fprintf(stderr, "change-probe: sync needs -c CTLDIR\n");
		return 1;
	}
	p->sync_n++;
	snprintf(ready, sizeof ready, "%s/ready.%d", p->ctl, p->sync_n);
	snprintf(go, sizeof go, "%s/go.%d", p->ctl, p->sync_n);
	if ((fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return fail("sync", ready);
	close(fd);
	for (waited = 0; access(go, F_OK) != 0; waited += 5) {
		if (waited >= SYNC_TIMEOUT_MS) {
			fprintf(stderr, "change-probe: sync: no '%s' after %d s\n", go,
			    SYNC_TIMEOUT_MS / 1000);
			return 1;
		}
		nanosleep(&tick, NULL);
	}
	return 0;
}

/* Opens src and returns its descriptor and size, or -1. */
static int
open_source(const char *src, off_t *size)
{
	struct stat st;
	int fd;

	if ((fd = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	*size = st.st_size;
	return fd;
}

static int
step_handle_save(const char *path, const char *file)
{
	struct {
		struct file_handle fh;
		unsigned char h[HANDLE_MAX];
	} buf;
	int mount_id, fd;
	size_t len;

	buf.fh.handle_bytes = HANDLE_MAX;
	if (name_to_handle_at(AT_FDCWD, path, &buf.fh, &mount_id, 0) < 0)
		return fail_or_unsupported("name_to_handle_at", path);
	len = sizeof buf.fh + buf.fh.handle_bytes;
	if ((fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return fail("handle-save", file);
	if (write(fd, &buf, len) != (ssize_t)len) {
		close(fd);
		return fail("handle-save", file);
	}
	close(fd);
	return 0;
}

static int
step_handle_open(struct probe *p, const char *dir, const char *file)
{
	struct {
		struct file_handle fh;
		unsigned char h[HANDLE_MAX];
	} buf;
	int mfd, fd;
	ssize_t n;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return fail("handle-open", file);
	n = read(fd, &buf, sizeof buf);
	close(fd);
	if (n < (ssize_t)sizeof buf.fh || buf.fh.handle_bytes > HANDLE_MAX) {
		fprintf(stderr, "change-probe: handle-open: '%s' holds no handle\n", file);
		return 1;
	}
	if ((mfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return fail("handle-open", dir);
	p->fd = open_by_handle_at(mfd, &buf.fh, O_RDWR | O_CLOEXEC);
	close(mfd);
	if (p->fd < 0)
		return fail_or_unsupported("open_by_handle_at", file);
	return 0;
}

static int
step_linkat(struct probe *p, const char *path)
{
	char proc[64];

	if (need_fd(p, "linkat") < 0)
		return 1;
	/* the unprivileged way (AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH) */
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", p->fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0)
		return fail("linkat", path);
	return 0;
}

static int
step_mmap(struct probe *p)
{
	struct stat st;
	long page = sysconf(_SC_PAGESIZE);

	if (need_fd(p, "mmap") < 0)
		return 1;
	if (fstat(p->fd, &st) < 0)
		return fail("mmap", "fstat");
	if (st.st_size < page && ftruncate(p->fd, page) < 0)
		return fail("mmap", "ftruncate");
	p->maplen = st.st_size < page ? (size_t)page : (size_t)st.st_size;
	p->map = mmap(NULL, p->maplen, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
	if (p->map == MAP_FAILED) {
		p->map = NULL;
		return fail("mmap", "the current file");
	}
	return 0;
}

static int
step_aio(struct probe *p, const char *text)
{
	aio_context_t ctx = 0;
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev;
	int ret = 1;

	if (need_fd(p, "aio") < 0)
		return 1;
	if (syscall(SYS_io_setup, 1, &ctx) < 0)
		return fail_or_unsupported("io_setup", "1");
	memset(&cb, 0, sizeof cb);
	cb.aio_fildes = (uint32_t)p->fd;
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_buf = (uint64_t)(uintptr_t)text;
	cb.aio_nbytes = strlen(text);
	cb.aio_offset = 0;
	if (syscall(SYS_io_submit, ctx, 1, cbs) != 1)
		fail("io_submit", "IOCB_CMD_PWRITE");
	else if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1)
		fail("io_getevents", "1");
	else if (ev.res != (int64_t)strlen(text)) {
		errno = ev.res < 0 ? (int)-ev.res : EIO;
		fail("aio write", text);
	} else
		ret = 0;
	syscall(SYS_io_destroy, ctx);
	return ret;
}

static int
step_uring(struct probe *p, const char *text)
{
	struct io_uring_params par;
	struct io_uring_sqe *sqes = MAP_FAILED;
	struct io_uring_cqe *cqe;
	char *ring = MAP_FAILED;
	size_t sqlen, cqlen, ringlen;
	unsigned *tail, idx;
	int rfd, ret = 1;

	if (need_fd(p, "uring") < 0)
		return 1;
	memset(&par, 0, sizeof par);
	if ((rfd = (int)syscall(SYS_io_uring_setup, 1, &par)) < 0) {
		/* EPERM: kernel.io_uring_disabled */
		if (errno == EPERM)
			errno = EOPNOTSUPP;
		return fail_or_unsupported("io_uring_setup", "1");
	}
	if (!(par.features & IORING_FEAT_SINGLE_MMAP)) {
		close(rfd);
		errno = EOPNOTSUPP;
		return fail_or_unsupported("io_uring", "IORING_FEAT_SINGLE_MMAP");
	}
	sqlen = par.sq_off.array + par.sq_entries * sizeof(unsigned);
	cqlen = par.cq_off.cqes + par.cq_entries * sizeof(struct io_uring_cqe);
	ringlen = sqlen > cqlen ? sqlen : cqlen;
	ring = mmap(NULL, ringlen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, rfd,
	    IORING_OFF_SQ_RING);
	sqes = mmap(NULL, par.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_POPULATE, rfd, IORING_OFF_SQES);
	if (ring == MAP_FAILED || sqes == MAP_FAILED) {
		fail("io_uring", "mmap of the rings");
		goto done;
	}
	tail = (unsigned *)(ring + par.sq_off.tail);
	idx = *tail & *(unsigned *)(ring + par.sq_off.ring_mask);
	memset(&sqes[idx], 0, sizeof sqes[idx]);
	sqes[idx].opcode = IORING_OP_WRITE;
	sqes[idx].fd = p->fd;
	sqes[idx].addr = (uint64_t)(uintptr_t)text;
	sqes[idx].len = (uint32_t)strlen(text);
	sqes[idx].off = 0;
	((unsigned *)(ring + par.sq_off.array))[idx] = idx;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, rfd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
		fail("io_uring_enter", "IORING_OP_WRITE");
		goto done;
	}
	cqe = (struct io_uring_cqe *)(ring + par.cq_off.cqes) +
	    (*(unsigned *)(ring + par.cq_off.head) & *(unsigned *)(ring + par.cq_off.ring_mask));
	if (cqe->res != (int32_t)strlen(text)) {
		errno = cqe->res < 0 ? -cqe->res : EIO;
		fail("io_uring write", text);
		goto done;
	}
	ret = 0;
done:
	if (sqes != MAP_FAILED)
		munmap(sqes, par.sq_entries * sizeof *sqes);
	if (ring != MAP_FAILED)
		munmap(ring, ringlen);
	close(rfd);
	return ret;
}

static int
step_path(const struct probe *p)
{
	char proc[64], buf[4096];
	ssize_t n;

	if (need_fd(p, "path") < 0)
		return 1;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", p->fd);
	if ((n = readlink(proc, buf, sizeof buf - 1)) < 0)
		return fail("readlink", proc);
	buf[n] = '\0';
	printf("%s\n", buf);
	fflush(stdout);
	return 0;
}

static int
step_copy(struct probe *p, const char *how, const char *src)
{
	off_t size, off = 0;
	ssize_t n = 0;
	int sfd, pfd[2];

	if (need_fd(p, how) < 0)
		return 1;
	if ((sfd = open_source(src, &size)) < 0)
		return fail(how, src);
	if (strcmp(how, "copy-range") == 0)
		n = copy_file_range(sfd, NULL, p->fd, NULL, (size_t)size, 0);
	else if (strcmp(how, "sendfile") == 0)
		n = sendfile(p->fd, sfd, &off, (size_t)size);
	else if (strcmp(how, "clone") == 0)
		n = ioctl(p->fd, FICLONE, sfd) < 0 ? -1 : size;
	else if (pipe(pfd) == 0) {
		n = splice(sfd, NULL, pfd[1], NULL, (size_t)size, 0);
		if (n >= 0)
			n = splice(pfd[0], NULL, p->fd, NULL, (size_t)n, 0);
		close(pfd[0]);
		close(pfd[1]);
	} else
		n = -1;
	close(sfd);
	if (n < 0)
		return fail_or_unsupported(how, src);
	if (n != size) {
		fprintf(stderr, "change-probe: %s '%s': %zd of %lld bytes\n", how, src, n,
		    (long long)size);
		return 1;
	}
	return 0;
}

/* Runs the step at argv[0]; returns its status and sets *used to the number
 * of words it took. */
static int
run_step(struct probe *p, char **argv, int argc, int *used)
{
	const char *s = argv[0];
	int nargs = 0;

	if (strcmp(s, "close") == 0 || strcmp(s, "mmap") == 0 || strcmp(s, "munmap") == 0 ||
	    strcmp(s, "sync") == 0 || strcmp(s, "path") == 0)
		nargs = 0;
	else if (strcmp(s, "handle-save") == 0 || strcmp(s, "handle-open") == 0 ||
	    strcmp(s, "exchange") == 0)
		nargs = 2;
	else
		nargs = 1;
	if (argc < 1 + nargs) {
		fprintf(stderr, "change-probe: %s: missing argument\n", s);
		return 1;
	}
	*used = 1 + nargs;
	if (strcmp(s, "open") == 0) {
		if ((p->fd = open(argv[1], O_RDWR | O_CLOEXEC)) < 0)
			return fail("open", argv[1]);
	} else if (strcmp(s, "tmpfile") == 0) {
		if ((p->fd = open(argv[1], O_TMPFILE | O_RDWR | O_CLOEXEC, 0644)) < 0)
			return fail_or_unsupported("O_TMPFILE", argv[1]);
	} else if (strcmp(s, "linkat") == 0) {
		return step_linkat(p, argv[1]);
	} else if (strcmp(s, "handle-save") == 0) {
		return step_handle_save(argv[1], argv[2]);
	} else if (strcmp(s, "handle-open") == 0) {
		return step_handle_open(p, argv[1], argv[2]);
	} else if (strcmp(s, "close") == 0) {
		if (need_fd(p, s) < 0 || close(p->fd) < 0)
			return fail("close", "the current file");
		p->fd = -1;
	} else if (strcmp(s, "mmap") == 0) {
		return step_mmap(p);
	} else if (strcmp(s, "mwrite") == 0) {
		if (p->map == NULL || strlen(argv[1]) > p->maplen) {
			fprintf(stderr, "change-probe: mwrite: no mapping that large\n");
			return 1;
		}
		memcpy(p->map, argv[1], strlen(argv[1]));
	} else if (strcmp(s, "munmap") == 0) {
		if (p->map == NULL || munmap(p->map, p->maplen) < 0)
			return fail("munmap", "the mapping");
		p->map = NULL;
	} else if (strcmp(s, "write") == 0 || strcmp(s, "pwrite") == 0) {
		size_t len = strlen(argv[1]);
		ssize_t n;

		if (need_fd(p, s) < 0)
			return 1;
		n = s[0] == 'p' ? pwrite(p->fd, argv[1], len, 0) : write(p->fd, argv[1], len);
		if (n != (ssize_t)len)
			return fail(s, argv[1]);
	} else if (strcmp(s, "aio") == 0) {
		return step_aio(p, argv[1]);
	} else if (strcmp(s, "uring") == 0) {
		return step_uring(p, argv[1]);
	} else if (strcmp(s, "path") == 0) {
		return step_path(p);
	} else if (strcmp(s, "copy-range") == 0 || strcmp(s, "sendfile") == 0 ||
	    strcmp(s, "splice") == 0 || strcmp(s, "clone") == 0) {
		return step_copy(p, s, argv[1]);
	} else if (strcmp(s, "exchange") == 0) {
		if (syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) < 0)
			return fail_or_unsupported("renameat2 RENAME_EXCHANGE", argv[1]);
	} else if (strcmp(s, "sync") == 0) {
		return handshake(p);
	} else {
		fprintf(stderr, "change-probe: unknown step '%s'\n", s);
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct probe p = { NULL, 0, -1, NULL, 0 };
	int i = 1, used, rc;

	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		p.ctl = argv[2];
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: change-probe [-c CTLDIR] STEP [ARG]...\n");
		return 2;
	}
	for (; i < argc; i += used)
		if ((rc = run_step(&p, argv + i, argc - i, &used)) != 0)
			return rc;
	return 0;
}
