/* test-openfiles.c: cmocka unit tests for the scan of files open for writing
 * (common/openfiles.h): in a temporary root, this process or a forked child
 * holds files open for writing, shared writable mappings whose descriptor is
 * closed, read-only opens and private mappings; the scan must find exactly
 * the writers, with the mappings read by PROCMAP_QUERY (where the kernel has
 * it) and as text. And the /proc/PID/maps line parser on golden lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "openfiles.h"
#include "unit-tmp.h"

/* openfiles_scan() flags of this pass: every scan test runs with the maps
 * read by PROCMAP_QUERY where the kernel has it, then as text */
static int scan_flags;

struct fixture {
	char dir[PATH_MAX];
	struct config cfg;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char text[PATH_MAX + 128];

	scan_flags = 0;
	if (f == NULL)
		return -1;
	if (unit_tmpdir(f->dir, sizeof f->dir, "openfiles") == NULL)
		return -1;
	if (mkdir(strcat(strcpy(text, f->dir), "/excluded"), 0700) < 0)
		return -1;
	snprintf(text, sizeof text, "root = %s\nexclude = /excluded$\n", f->dir);
	if (config_parse(&f->cfg, "test.conf", text) < 0) {
		fprintf(stderr, "%s\n", f->cfg.err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

/* The fixture on another file system than the other tests' roots (which
 * are under TMPDIR): /dev/shm where it is one. A file there that the scan
 * cannot name is then counted by the scans of this test only, not by a
 * test run beside it whose root is on TMPDIR's file system. */
static int
setup_apart(void **state)
{
	struct stat shm, tmp;
	const char *t = getenv("TMPDIR");
	char *saved = t != NULL ? strdup(t) : NULL;
	int rc;

	if (stat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode) &&
	    stat(t != NULL && *t ? t : "/tmp", &tmp) == 0 && shm.st_dev != tmp.st_dev &&
	    access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
	rc = setup(state);
	if (saved != NULL)
		setenv("TMPDIR", saved, 1);
	else
		unsetenv("TMPDIR");
	free(saved);
	return rc;
}

static int
setup_apart_text(void **state)
{
	int rc = setup_apart(state);

	scan_flags = OPENFILES_MAPS_TEXT;
	return rc;
}

static int
setup_text(void **state)
{
	int rc = setup(state);

	scan_flags = OPENFILES_MAPS_TEXT;
	return rc;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	unit_rmtree(f->dir);
	config_free(&f->cfg);
	free(f);
	return 0;
}

/* The fixture's path for name, in buf (PATH_MAX bytes). */
static char *
fpath(const struct fixture *f, const char *name, char *buf)
{
	return unit_join(buf, PATH_MAX, f->dir, name);
}

/* Creates name in the directory dfd (AT_FDCWD: name is a path) with 4096
 * bytes and opens it with flags. */
static int
open_at(int dfd, const char *name, int flags)
{
	char block[4096];
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	memset(block, 'x', sizeof block);
	assert_int_equal(write(fd, block, sizeof block), (ssize_t)sizeof block);
	close(fd);
	fd = openat(dfd, name, flags);
	assert_true(fd >= 0);
	return fd;
}

/* Creates name under the fixture with 4096 bytes and opens it with flags. */
static int
make_open(const struct fixture *f, const char *name, int flags)
{
	char p[PATH_MAX];

	return open_at(AT_FDCWD, fpath(f, name, p), flags);
}

/* Maps name in dfd (made by open_at with flags) and closes the descriptor. */
static void *
map_at(int dfd, const char *name, int flags, int prot, int share)
{
	int fd = open_at(dfd, name, flags);
	void *m = mmap(NULL, 4096, prot, share, fd, 0);

	assert_true(m != MAP_FAILED);
	close(fd);
	return m;
}

/* The same for name under the fixture. */
static void *
make_map(const struct fixture *f, const char *name, int flags, int prot, int share)
{
	char p[PATH_MAX];

	return map_at(AT_FDCWD, fpath(f, name, p), flags, prot, share);
}

/* Scans with skip and returns 1 when name (under the fixture) was found. */
static int
scan_has(const struct fixture *f, pid_t skip, const char *name, struct openfiles *out)
{
	struct openfiles of;
	char p[PATH_MAX];
	size_t i;
	int found = 0;

	assert_int_equal(openfiles_scan(&of, &f->cfg, skip, scan_flags), 0);
	assert_int_equal(of.err.code, CHJ_OK);
	assert_true(skip != 0 || of.processes > 0);   /* at least ourselves */
	fpath(f, name, p);
	for (i = 0; i < of.npaths; i++) {
		found |= strcmp(of.paths[i], p) == 0;
		/* every path is under the root */
		assert_memory_equal(of.paths[i], f->dir, strlen(f->dir));
		if (i > 0)
			assert_true(strcmp(of.paths[i - 1], of.paths[i]) < 0);
	}
	if (out != NULL)
		*out = of;
	else
		openfiles_free(&of);
	return found;
}

static void
test_open_for_write(void **state)
{
	struct fixture *f = *state;
	int w = make_open(f, "w", O_WRONLY), rw = make_open(f, "rw", O_RDWR | O_APPEND);
	int r = make_open(f, "r", O_RDONLY), p = make_open(f, "p", O_PATH);

	assert_true(scan_has(f, 0, "w", NULL));
	assert_true(scan_has(f, 0, "rw", NULL));
	assert_false(scan_has(f, 0, "r", NULL));
	assert_false(scan_has(f, 0, "p", NULL));
	/* our own process left out */
	assert_false(scan_has(f, getpid(), "w", NULL));
	close(w);
	assert_false(scan_has(f, 0, "w", NULL));
	close(rw);
	close(r);
	close(p);
}

static void
test_shared_mapping_after_close(void **state)
{
	struct fixture *f = *state;
	char *m = make_map(f, "mapped", O_RDWR, PROT_READ | PROT_WRITE, MAP_SHARED);
	char *wo = make_map(f, "write-only-map", O_RDWR, PROT_WRITE, MAP_SHARED);

	m[0] = 'y';
	assert_true(scan_has(f, 0, "mapped", NULL));
	assert_true(scan_has(f, 0, "write-only-map", NULL));
	munmap(m, 4096);
	munmap(wo, 4096);
	assert_false(scan_has(f, 0, "mapped", NULL));
	assert_false(scan_has(f, 0, "write-only-map", NULL));
}

/* 1 when this process may look up its map_files links (CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE); the lookup makes the kernel's entry for the
 * range. */
static int
map_files_readable(void *m)
{
	char link[64];
	struct stat st;

	snprintf(link, sizeof link, "/proc/self/map_files/%lx-%lx", (unsigned long)m,
	    (unsigned long)m + 4096);
	return lstat(link, &st) == 0;
}

static void
test_private_and_read_only_mappings(void **state)
{
	struct fixture *f = *state;
	char *priv = make_map(f, "private", O_RDWR, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	char *ro = make_map(f, "shared-ro", O_RDONLY, PROT_READ, MAP_SHARED);
	/* read-only now, but mprotect() can make it writable: its file was
	 * opened for writing */
	char *rwro = make_map(f, "shared-rw-fd-ro-map", O_RDWR, PROT_READ, MAP_SHARED);

	priv[0] = 'y';
	assert_false(scan_has(f, 0, "private", NULL));
	/* its VmFlags (smaps) say it cannot be made writable */
	assert_false(scan_has(f, 0, "shared-ro", NULL));
	assert_true(scan_has(f, 0, "shared-rw-fd-ro-map", NULL));
	assert_int_equal(mprotect(rwro, 4096, PROT_READ | PROT_WRITE), 0);
	rwro[0] = 'z';
	assert_true(scan_has(f, 0, "shared-rw-fd-ro-map", NULL));
	munmap(priv, 4096);
	munmap(ro, 4096);
	munmap(rwro, 4096);
}

/* Read-only shared mappings whose smaps entries come after hundreds of
 * others (each mapping made later takes a lower address, and smaps lists
 * them by address): the scan reads smaps only as far as it needs, and must
 * still reach them. The one of a file opened for writing counts, the one
 * of a file opened read-only does not (were its entry not reached, it would
 * count). */
static void
test_mapping_far_into_smaps(void **state)
{
	struct fixture *f = *state;
	enum { NANON = 400, NFILES = 6 };
	char name[32], *files[NFILES], *anon[NANON];
	int i;

	/* the files' mappings spread among the others, each a read-only shared
	 * mapping of a file opened for writing (it counts) or read-only (not):
	 * the scan asks about them in turn, while smaps is read in parts */
	for (i = 0; i < NANON; i++) {
		if (i % (NANON / NFILES) == 0 && i / (NANON / NFILES) < NFILES) {
			int k = i / (NANON / NFILES);

			snprintf(name, sizeof name, "spread-%d-%s", k, k % 2 ? "ro" : "rw");
			files[k] = make_map(f, name, k % 2 ? O_RDONLY : O_RDWR, PROT_READ, MAP_SHARED);
		}
		/* alternate protections: adjacent mappings are not merged */
		anon[i] = mmap(NULL, 4096, i % 2 ? PROT_READ : PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(anon[i] != MAP_FAILED);
	}
	for (i = 0; i < NFILES; i++) {
		snprintf(name, sizeof name, "spread-%d-%s", i, i % 2 ? "ro" : "rw");
		if (i % 2)
			assert_false(scan_has(f, 0, name, NULL));
		else
			assert_true(scan_has(f, 0, name, NULL));
	}
	for (i = 0; i < NANON; i++)
		munmap(anon[i], 4096);
	for (i = 0; i < NFILES; i++)
		munmap(files[i], 4096);
}

/* Under the fixture, a chain of directories making a path of at least len
 * bytes, made one level at a time (mkdirat: no syscall takes the whole
 * name). Returns a descriptor of the deepest; its path in path (size bytes). */
static int
make_deep_dir(const struct fixture *f, size_t len, char *path, size_t size)
{
	char comp[201];
	int fd = open(f->dir, O_RDONLY | O_DIRECTORY), next;
	size_t n = strlen(f->dir);

	assert_true(fd >= 0 && n < size);
	memcpy(path, f->dir, n + 1);
	memset(comp, 'd', sizeof comp - 1);
	comp[sizeof comp - 1] = '\0';
	while (n < len) {
		assert_true(n + 1 + strlen(comp) < size);
		if (mkdirat(fd, comp, 0700) < 0)
			assert_int_equal(errno, EEXIST);
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY);
		assert_true(next >= 0);
		close(fd);
		fd = next;
		n += (size_t)sprintf(path + n, "/%s", comp);
	}
	return fd;
}

/* 1 when the scan's paths hold path. */
static int
paths_have(const struct openfiles *of, const char *path)
{
	size_t i;

	for (i = 0; i < of->npaths; i++)
		if (strcmp(of->paths[i], path) == 0)
			return 1;
	return 0;
}

/* Names /proc cannot give: readlink() of a descriptor fails from PATH_MAX
 * bytes on, and so does PROCMAP_QUERY for a mapping (maps as text has the
 * name whole). Such a file open for writing is counted in unnamed, not
 * passed over; the process's other mappings are still read (a writer
 * mapped above a long name was not: the failed query ended the process's
 * maps); a mapping's long name is read from maps as text; one longer than
 * the scan holds (NAME_MAX_BYTES) is counted. */
static void
test_names_too_long_for_proc(void **state)
{
	struct fixture *f = *state;
	static char deep[12000], deepest[12000], name[12100];
	struct openfiles of;
	char *above, *long_ro, *long_rw, *longest, *below[2];
	int dfd, held, ddfd;

	/* the descriptor: counted (this process) */
	dfd = make_deep_dir(f, PATH_MAX + 500, deep, sizeof deep);
	held = openat(dfd, "held", O_RDWR | O_CREAT, 0600);
	assert_true(held >= 0);
	assert_int_equal(openfiles_scan(&of, &f->cfg, 0, scan_flags), 0);
	assert_int_equal(of.unnamed, 1);
	openfiles_free(&of);
	close(held);

	/* mapped first: above the others, asked last */
	above = make_map(f, "writer-above", O_RDWR, PROT_READ | PROT_WRITE, MAP_SHARED);
	long_ro = map_at(dfd, "mapped-ro", O_RDONLY, PROT_READ, MAP_SHARED);
	long_rw = map_at(dfd, "mapped-rw", O_RDWR, PROT_READ, MAP_SHARED);
	ddfd = make_deep_dir(f, 9000, deepest, sizeof deepest);
	longest = map_at(ddfd, "mapped-longest", O_RDWR, PROT_READ | PROT_WRITE, MAP_SHARED);
	/* below the long names: asked first, their smaps entries found, then
	 * asked again when maps is read as text */
	below[0] = make_map(f, "ro-below-0", O_RDONLY, PROT_READ, MAP_SHARED);
	below[1] = make_map(f, "ro-below-1", O_RDONLY, PROT_READ, MAP_SHARED);

	assert_int_equal(openfiles_scan(&of, &f->cfg, 0, scan_flags), 0);
	assert_true(paths_have(&of, fpath(f, "writer-above", name)));
	/* the longest mapping's name: counted */
	assert_int_equal(of.unnamed, 1);
	snprintf(name, sizeof name, "%s/mapped-rw", deep);
	assert_true(paths_have(&of, name));
	snprintf(name, sizeof name, "%s/mapped-ro", deep);
	assert_false(paths_have(&of, name));
	assert_false(paths_have(&of, fpath(f, "ro-below-0", name)));
	assert_false(paths_have(&of, fpath(f, "ro-below-1", name)));
	openfiles_free(&of);

	/* a long name that cannot write is not counted */
	munmap(longest, 4096);
	assert_int_equal(openfiles_scan(&of, &f->cfg, 0, scan_flags), 0);
	assert_int_equal(of.unnamed, 0);
	openfiles_free(&of);

	munmap(below[0], 4096);
	munmap(below[1], 4096);
	munmap(above, 4096);
	munmap(long_ro, 4096);
	munmap(long_rw, 4096);
	close(dfd);
	close(ddfd);
}

/* In a mount namespace of its own (the mounts gone with it): a directory
 * under the root bind-mounted outside it, a file held for writing and one
 * mapped writable through the mount, one held read-only; the scan run
 * there. Exits 0 when the two writers are found under the root's names and
 * nothing else of them, a bit per wrong answer, 77 when no namespace can be
 * made. */
static int
scan_through_bind_mount(const struct fixture *f, const char *alias)
{
	char sub[PATH_MAX + 16], p[2 * PATH_MAX];
	struct openfiles of;
	void *m;
	int fd, held, ro, rc = 0;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 77;
	/* a file system of this namespace only: a test run beside this one
	 * does not see these files held under names it cannot match */
	if (mount("tmpfs", f->dir, "tmpfs", 0, "size=1m") < 0)
		return 103;
	snprintf(sub, sizeof sub, "%s/sub", f->dir);
	if (mkdir(sub, 0700) < 0 || mount(sub, alias, NULL, MS_BIND, NULL) < 0)
		return 100;
	snprintf(p, sizeof p, "%s/held", alias);
	held = open(p, O_RDWR | O_CREAT, 0600);
	snprintf(p, sizeof p, "%s/readonly", alias);
	ro = open(p, O_RDONLY | O_CREAT, 0600);
	snprintf(p, sizeof p, "%s/mapped", alias);
	fd = open(p, O_RDWR | O_CREAT, 0600);
	if (held < 0 || ro < 0 || fd < 0 || ftruncate(fd, 4096) < 0 ||
	    (m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
		return 101;
	close(fd);
	if (openfiles_scan(&of, &f->cfg, 0, scan_flags) < 0)
		return 102;
	snprintf(p, sizeof p, "%s/held", sub);
	rc |= paths_have(&of, p) ? 0 : 1;
	snprintf(p, sizeof p, "%s/mapped", sub);
	rc |= paths_have(&of, p) ? 0 : 2;
	snprintf(p, sizeof p, "%s/readonly", sub);
	rc |= paths_have(&of, p) ? 4 : 0;
	openfiles_free(&of);
	munmap(m, 4096);
	return rc;
}

/* A file under the root held for writing through a bind mount of a
 * directory under it, outside the root: /proc names it by the mount's
 * path, which is under no root; it is listed under the root's name (it
 * was passed over: its writes through a mapping were missed). */
static void
test_file_through_a_bind_mount(void **state)
{
	struct fixture *f = *state;
	char alias[PATH_MAX + 8];
	int status;
	pid_t pid;

	if (geteuid() != 0)
		skip();          /* mounts need root */
	snprintf(alias, sizeof alias, "%s-alias", f->dir);
	assert_int_equal(mkdir(alias, 0700), 0);
	if ((pid = fork()) == 0)
		_exit(scan_through_bind_mount(f, alias));
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	rmdir(alias);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();          /* no mount namespace here */
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A read-only shared mapping at the range where another file was mapped
 * before: the kernel keeps the /proc/PID/map_files entry of that range
 * (looked up once, here by map_files_readable()) with the open mode of the
 * file mapped first. The scan must say what the mapping now can do: a file
 * opened for writing counts, one opened read-only does not. */
static void
test_map_files_mode_of_an_earlier_mapping(void **state)
{
	struct fixture *f = *state;
	char *m = make_map(f, "first-ro", O_RDONLY, PROT_READ, MAP_SHARED);
	int fd;

	if (!map_files_readable(m)) {
		munmap(m, 4096);
		skip();          /* not privileged: such a mapping always counts */
	}
	munmap(m, 4096);
	fd = make_open(f, "then-rw", O_RDWR);
	assert_true(mmap(m, 4096, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == m);
	close(fd);
	assert_true(map_files_readable(m));
	assert_true(scan_has(f, 0, "then-rw", NULL));
	/* and the other way: the entry made for the file opened for writing */
	munmap(m, 4096);
	fd = make_open(f, "then-ro", O_RDONLY);
	assert_true(mmap(m, 4096, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == m);
	close(fd);
	assert_false(scan_has(f, 0, "then-ro", NULL));
	munmap(m, 4096);
}

/* A forked child holds a file for writing and a shared mapping; it is found
 * when we are left out, and not when the child is. */
static void
test_forked_child(void **state)
{
	struct fixture *f = *state;
	int sync_pipe[2], go_pipe[2], status;
	pid_t child;
	char c;

	assert_int_equal(pipe(sync_pipe), 0);
	assert_int_equal(pipe(go_pipe), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int fd = make_open(f, "child-held", O_WRONLY);
		char *m = make_map(f, "child-mapped", O_RDWR, PROT_READ | PROT_WRITE, MAP_SHARED);

		m[1] = 'c';
		(void)fd;
		if (write(sync_pipe[1], "r", 1) != 1 || read(go_pipe[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(sync_pipe[1]);
	close(go_pipe[0]);
	assert_int_equal(read(sync_pipe[0], &c, 1), 1);
	assert_true(scan_has(f, getpid(), "child-held", NULL));
	assert_true(scan_has(f, getpid(), "child-mapped", NULL));
	assert_false(scan_has(f, child, "child-held", NULL));
	assert_false(scan_has(f, child, "child-mapped", NULL));
	assert_int_equal(write(go_pipe[1], "g", 1), 1);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(sync_pipe[0]);
	close(go_pipe[1]);
	assert_false(scan_has(f, 0, "child-held", NULL));
}

/* In a forked child: dies with the test process, so a failed assertion
 * there (which leaves it) does not leave the child holding the output. */
static void
child_dies_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(3);
}

/* Makes pipefd, then forks a child that dies with this process: its pid in
 * the parent, 0 in the child. */
static pid_t
fork_child_with_pipe(int pipefd[2])
{
	pid_t child, parent = getpid();

	assert_int_equal(pipe(pipefd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		child_dies_with_parent(parent);
	return child;
}

/* A process with more descriptors than one read of its /proc/PID/fd
 * directory returns (the scan reads it in 8 KiB parts, about 340 entries):
 * the file open for writing behind all of them is found. */
static void
test_many_descriptors(void **state)
{
	struct fixture *f = *state;
	enum { NFDS = 900 };       /* under the usual limit of 1024 */
	int fds[NFDS], i, w, status, pipefd[2];
	pid_t child = fork_child_with_pipe(pipefd);
	char c;

	if (child == 0) {
		/* a child holds them: the scan skips this process */
		for (i = 0; i < NFDS; i++)
			if ((fds[i] = open("/dev/null", O_RDONLY)) < 0)
				_exit(2);
		w = make_open(f, "behind-many", O_WRONLY);
		(void)w;
		if (write(pipefd[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	assert_true(scan_has(f, getpid(), "behind-many", NULL));
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);
	close(pipefd[0]);
}

/* Many processes, read by eight threads: each one's writer is found. */
static void
test_many_processes(void **state)
{
	struct fixture *f = *state;
	enum { NCHILD = 140 };
	pid_t kids[NCHILD];
	struct openfiles of;
	int i, j, status, pipefd[2];
	char c, name[32], p[PATH_MAX];
	pid_t parent = getpid();

	assert_int_equal(pipe(pipefd), 0);
	for (i = 0; i < NCHILD; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			child_dies_with_parent(parent);
			snprintf(name, sizeof name, "kid-%03d", i);
			(void)make_open(f, name, O_WRONLY);
			if (write(pipefd[1], "r", 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
	}
	close(pipefd[1]);
	for (i = 0; i < NCHILD; i++)
		assert_int_equal(read(pipefd[0], &c, 1), 1);
	assert_int_equal(openfiles_scan(&of, &f->cfg, getpid(), scan_flags), 0);
	assert_true(of.processes >= NCHILD);
	for (i = 0; i < NCHILD; i++) {
		snprintf(name, sizeof name, "kid-%03d", i);
		fpath(f, name, p);
		for (j = 0; j < (int)of.npaths && strcmp(of.paths[j], p) != 0; j++)
			;
		assert_true(j < (int)of.npaths);
	}
	assert_int_equal(of.npaths, NCHILD);
	openfiles_free(&of);
	for (i = 0; i < NCHILD; i++) {
		kill(kids[i], SIGKILL);
		assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
	}
	close(pipefd[0]);
}

/* What a test's thread does in its child process. */
struct thread_job {
	const struct fixture *f;
	int ready_fd;            /* written once the files are held */
	int own_table;           /* unshare(CLONE_FILES) first */
};

/* A child's thread: holds a file open for writing and a shared writable
 * mapping (its descriptor closed), says so, and waits to be killed. */
static void *
holding_thread(void *arg)
{
	struct thread_job *job = arg;
	char *m;

	if (job->own_table && unshare(CLONE_FILES) < 0)
		_exit(4);
	(void)make_open(job->f, "thread-held", O_WRONLY);
	m = make_map(job->f, "thread-mapped", O_RDWR, PROT_READ | PROT_WRITE, MAP_SHARED);
	m[0] = 't';
	if (write(job->ready_fd, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
	return NULL;
}

/* 1 once the process's exe link names nothing (its first thread exited),
 * waited for up to 10 s; 0 if it never did. */
static int
first_thread_exited(pid_t pid)
{
	char link[64], c;
	int i;

	snprintf(link, sizeof link, "/proc/%ld/exe", (long)pid);
	for (i = 0; i < 10000; i++) {
		if (readlink(link, &c, 1) < 0 && errno == ENOENT)
			return 1;
		usleep(1000);
	}
	return 0;
}

/* A child whose writer is one of its threads; its first thread exits
 * (pthread_exit() from main) when exit_main. Returns the child's pid, once
 * the files are held. */
static pid_t
start_threaded_child(const struct fixture *f, int own_table, int exit_main)
{
	struct thread_job job = { f, -1, own_table };
	int pipefd[2];
	pid_t child = fork_child_with_pipe(pipefd);
	pthread_t t;
	char c;

	if (child == 0) {
		job.ready_fd = pipefd[1];
		if (pthread_create(&t, NULL, holding_thread, &job) != 0)
			_exit(2);
		if (exit_main)
			pthread_exit(NULL);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	close(pipefd[0]);
	return child;
}

static void
stop_child(pid_t child)
{
	int status;

	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);
}

/* Starts a threaded child (as start_threaded_child()) and checks that the
 * scan finds its thread's file and mapping. */
static void
check_threaded_child(const struct fixture *f, int own_table, int exit_main)
{
	pid_t child = start_threaded_child(f, own_table, exit_main);

	if (exit_main)
		assert_true(first_thread_exited(child));
	assert_true(scan_has(f, getpid(), "thread-held", NULL));
	assert_true(scan_has(f, getpid(), "thread-mapped", NULL));
	stop_child(child);
}

/* A process whose first thread exited (pthread_exit() in main) shows no
 * descriptor and no mapping in /proc/PID/fd and maps, though its other
 * threads hold its files: they are read through one of those threads. */
static void
test_first_thread_exited(void **state)
{
	check_threaded_child(*state, 0, 1);
}

/* A thread with a descriptor table of its own (unshare(CLONE_FILES)): its
 * descriptors are in its task/TID/fd only. Its mapping is the process's. */
static void
test_thread_with_own_descriptors(void **state)
{
	check_threaded_child(*state, 1, 0);
}

/* Excluded paths, sync cookies, deleted files and files outside the root are
 * not listed; a file whose real name ends in " (deleted)" is. */
static void
test_not_under_root_or_excluded(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX];
	int ex = make_open(f, "excluded/x", O_WRONLY);
	int ck = make_open(f, ".chjournal-cookie.123.0123456789abcdef", O_WRONLY);
	int gone = make_open(f, "gone", O_WRONLY);
	int real = make_open(f, "real (deleted)", O_WRONLY);
	int outside = open("/dev/null", O_WRONLY);
	char *gm = make_map(f, "gone-mapped", O_RDWR, PROT_READ | PROT_WRITE, MAP_SHARED);

	assert_int_equal(unlink(fpath(f, "gone", p)), 0);
	assert_int_equal(unlink(fpath(f, "gone-mapped", p)), 0);
	assert_false(scan_has(f, 0, "excluded/x", NULL));
	assert_false(scan_has(f, 0, ".chjournal-cookie.123.0123456789abcdef", NULL));
	assert_false(scan_has(f, 0, "gone", NULL));
	assert_false(scan_has(f, 0, "gone-mapped", NULL));
	assert_true(scan_has(f, 0, "real (deleted)", NULL));
	close(ex);
	close(ck);
	close(gone);
	close(real);
	close(outside);
	munmap(gm, 4096);
}

/* Odd names, exactly: spaces, a newline (written "\012" in maps), and a
 * backslash; each held by a descriptor or by a mapping alone. Paths found
 * twice are listed once. */
static void
test_odd_names(void **state)
{
	struct fixture *f = *state;
	struct openfiles of;
	const char *names[] = { "a b  c", "new\nline", "back\\012slash", " lead" };
	char *maps[4];
	int fds[4], dup_fd;
	size_t i, j;

	for (i = 0; i < 4; i++) {
		maps[i] = make_map(f, names[i], O_RDWR, PROT_READ | PROT_WRITE, MAP_SHARED);
		fds[i] = -1;
	}
	/* held twice: a descriptor too */
	fds[0] = make_open(f, names[0], O_RDWR);
	dup_fd = dup(fds[0]);
	for (i = 0; i < 4; i++) {
		assert_true(scan_has(f, 0, names[i], &of));
		for (j = 1; j < of.npaths; j++)
			assert_string_not_equal(of.paths[j - 1], of.paths[j]);
		openfiles_free(&of);
	}
	for (i = 0; i < 4; i++)
		munmap(maps[i], 4096);
	close(fds[0]);
	close(dup_fd);
}

static void
test_parse_maps_line(void **state)
{
	struct openfiles_map m;
	const char *l;

	(void)state;
	l = "7f0a1b2c3000-7f0a1b2c4000 rw-s 00001000 fd:01 1234567                    /srv/a b (deleted)";
	assert_int_equal(openfiles_parse_maps_line(l, strlen(l), &m), 0);
	assert_int_equal(m.start, 0x7f0a1b2c3000UL);
	assert_int_equal(m.end, 0x7f0a1b2c4000UL);
	assert_true(m.shared_write);
	assert_int_equal(m.major, 0xfd);
	assert_int_equal(m.minor, 1);
	assert_int_equal(m.pathlen, strlen("/srv/a b (deleted)"));
	assert_memory_equal(m.path, "/srv/a b (deleted)", m.pathlen);

	l = "00400000-00401000 -w-s 00000000 08:02 12 /x";
	assert_int_equal(openfiles_parse_maps_line(l, strlen(l), &m), 0);
	assert_true(m.shared_write);
	assert_int_equal(m.pathlen, 2);

	/* private, read-only shared, and anonymous mappings */
	l = "00400000-00401000 rw-p 00000000 08:02 12 /x";
	assert_int_equal(openfiles_parse_maps_line(l, strlen(l), &m), 0);
	assert_false(m.shared_write);
	l = "00400000-00401000 r--s 00000000 08:02 12 /x";
	assert_int_equal(openfiles_parse_maps_line(l, strlen(l), &m), 0);
	assert_false(m.shared_write);
	l = "7ffd1000-7ffd2000 rw-p 00000000 00:00 0 ";
	assert_int_equal(openfiles_parse_maps_line(l, strlen(l), &m), 0);
	assert_null(m.path);
	l = "7ffd1000-7ffd2000 rw-s 00000000 00:00 0";
	assert_int_equal(openfiles_parse_maps_line(l, strlen(l), &m), 0);
	assert_null(m.path);

	/* not the maps layout */
	l = "";
	assert_int_equal(openfiles_parse_maps_line(l, 0, &m), -1);
	l = "7ffd1000 rw-s 00000000 00:00 0 /x";
	assert_int_equal(openfiles_parse_maps_line(l, strlen(l), &m), -1);
	l = "1-2 rw-s 0 fd:01";
	assert_int_equal(openfiles_parse_maps_line(l, strlen(l), &m), -1);
	l = "1-2 rw-s 0 fd:01 12x /y";
	assert_int_equal(openfiles_parse_maps_line(l, strlen(l), &m), -1);
}

/* The same test with the maps read as text (kernels before 6.11). */
#define TEXT_MAPS_TEST(f) { #f " (maps as text)", f, setup_text, teardown, NULL }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_maps_line),
		cmocka_unit_test_setup_teardown(test_open_for_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_mapping_after_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_and_read_only_mappings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forked_child, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_under_root_or_excluded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_descriptors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_files_mode_of_an_earlier_mapping, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_first_thread_exited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mapping_far_into_smaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_too_long_for_proc, setup_apart, teardown),
		cmocka_unit_test_setup_teardown(test_file_through_a_bind_mount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thread_with_own_descriptors, setup, teardown),
		TEXT_MAPS_TEST(test_shared_mapping_after_close),
		TEXT_MAPS_TEST(test_private_and_read_only_mappings),
		TEXT_MAPS_TEST(test_forked_child),
		TEXT_MAPS_TEST(test_not_under_root_or_excluded),
		TEXT_MAPS_TEST(test_odd_names),
		TEXT_MAPS_TEST(test_map_files_mode_of_an_earlier_mapping),
		TEXT_MAPS_TEST(test_first_thread_exited),
		TEXT_MAPS_TEST(test_mapping_far_into_smaps),
		{ "test_names_too_long_for_proc (maps as text)", test_names_too_long_for_proc,
		    setup_apart_text, teardown, NULL },
		TEXT_MAPS_TEST(test_file_through_a_bind_mount),
	};

	return cmocka_run_group_tests_name("openfiles", tests, NULL, NULL);
}
