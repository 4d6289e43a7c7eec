/* test-wire.c: the framing of the serve protocol (common/wire.h): frames
 * round-trip through a file; a clean end between frames, an end inside one,
 * an oversized length, a bad CRC, a field running past its frame, a field
 * over its limit or holding a NUL, a number of the wrong size are each told
 * apart, and a frame too large to send is dropped without the ones before. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "wire.h"

/* A temporary file, empty, at offset 0. */
static int
scratch(void)
{
	FILE *f = tmpfile();
	int fd;

	assert_non_null(f);
	fd = dup(fileno(f));
	fclose(f);
	assert_true(fd >= 0);
	return fd;
}

/* Writes raw bytes to fd and rewinds it for reading. */
static void
raw(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
}

static void
be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* A frame of type t with body fields given raw (already length-prefixed). */
static size_t
frame(unsigned char *out, int t, const unsigned char *fields, size_t flen, int crc_xor)
{
	uint32_t crc;

	be32(out, (uint32_t)(1 + flen));
	out[4] = (unsigned char)t;
	memcpy(out + 5, fields, flen);
	crc = (uint32_t)crc32(0L, out + 4, (uInt)(1 + flen)) ^ (uint32_t)crc_xor;
	be32(out + 5 + flen, crc);
	return 9 + flen;
}

static void
test_round_trip(void **state)
{
	struct wire w, r;
	struct wire_msg m;
	const unsigned char *b;
	uint64_t v;
	size_t len;
	int fd = scratch();

	(void)state;
	wire_init(&w, -1, fd);
	wire_start(&w, 7);
	wire_put_str(&w, "user.alice");
	wire_put_u64(&w, 0x0102030405060708ULL);
	wire_put(&w, "a\0b", 3);
	wire_put_str(&w, "");
	assert_int_equal(wire_end(&w), 0);
	wire_start(&w, 64);
	assert_int_equal(wire_end(&w), 0);
	assert_int_equal(wire_flush(&w), 0);
	wire_free(&w);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);

	wire_init(&r, fd, -1);
	assert_int_equal(wire_recv(&r, &m), 0);
	assert_int_equal(m.type, 7);
	assert_int_equal(m.nfields, 4);
	assert_string_equal(wire_str(&r, 0, 64, "name"), "user.alice");
	assert_int_equal(wire_u64(&r, 1, "number", &v), 0);
	assert_true(v == 0x0102030405060708ULL);
	b = wire_bytes(&r, 2, 3, "bytes", &len);
	assert_non_null(b);
	assert_int_equal(len, 3);
	assert_memory_equal(b, "a\0b", 3);
	assert_string_equal(wire_str(&r, 3, 0, "empty"), "");
	/* the limits of the getters */
	assert_null(wire_str(&r, 0, 9, "name"));
	assert_int_equal(r.err.code, CHJ_ERR_PROTOCOL);
	assert_non_null(strstr(r.err.msg, "name of 10 bytes refused: at most 9"));
	assert_null(wire_str(&r, 2, 64, "bytes"));
	assert_non_null(strstr(r.err.msg, "holds a NUL"));
	assert_int_equal(wire_u64(&r, 0, "number", &v), -1);
	assert_null(wire_str(&r, 4, 64, "missing"));
	assert_non_null(strstr(r.err.msg, "no missing"));
	assert_int_equal(wire_nfields(&r, 5, 5, "request"), -1);
	assert_int_equal(wire_nfields(&r, 4, 4, "request"), 0);

	assert_int_equal(wire_recv(&r, &m), 0);
	assert_int_equal(m.type, 64);
	assert_int_equal(m.nfields, 0);
	assert_int_equal(wire_recv(&r, &m), 1);         /* a clean end */
	wire_free(&r);
	close(fd);
}

/* What one malformed input makes wire_recv say. */
static void
expect_recv(const unsigned char *p, size_t n, int code, const char *says)
{
	struct wire r;
	struct wire_msg m;
	int fd = scratch();

	raw(fd, p, n);
	wire_init(&r, fd, -1);
	assert_int_equal(wire_recv(&r, &m), -1);
	assert_int_equal(r.err.code, code);
	if (strstr(r.err.msg, says) == NULL)
		fail_msg("'%s' does not say '%s'", r.err.msg, says);
	wire_free(&r);
	close(fd);
}

static void
test_malformed(void **state)
{
	unsigned char buf[256], f[64];
	size_t n;

	(void)state;
	/* a field "abc" */
	be32(f, 3);
	memcpy(f + 4, "abc", 3);
	n = frame(buf, 9, f, 7, 0);
	expect_recv(buf, n - 1, CHJ_ERR_PEER, "ended inside a frame");
	expect_recv(buf, 2, CHJ_ERR_PEER, "ended inside a frame");
	n = frame(buf, 9, f, 7, 1);
	expect_recv(buf, n, CHJ_ERR_PROTOCOL, "bad CRC");
	be32(buf, 0x7ffffff0);
	expect_recv(buf, 16, CHJ_ERR_PROTOCOL, "refused: at most");
	be32(buf, 0);
	expect_recv(buf, 8, CHJ_ERR_PROTOCOL, "no type");
	/* a field claiming more than its frame holds */
	be32(f, 40);
	n = frame(buf, 9, f, 7, 0);
	expect_recv(buf, n, CHJ_ERR_PROTOCOL, "claims 40 bytes");
	/* a field length cut off */
	n = frame(buf, 9, f, 2, 0);
	expect_recv(buf, n, CHJ_ERR_PROTOCOL, "cut off");
}

static void
test_too_large_to_send(void **state)
{
	struct wire w, r;
	struct wire_msg m;
	unsigned char *room;
	int fd = scratch();

	(void)state;
	wire_init(&w, -1, fd);
	wire_start(&w, 1);
	wire_put_str(&w, "kept");
	assert_int_equal(wire_end(&w), 0);
	wire_start(&w, 2);
	room = wire_put_room(&w, WIRE_FRAME_MAX + 16);
	assert_non_null(room);
	memset(room, 'x', WIRE_FRAME_MAX + 16);
	wire_put_done(&w, WIRE_FRAME_MAX + 16);
	assert_int_equal(wire_end(&w), -1);
	assert_int_equal(w.err.code, CHJ_ERR_PROTOCOL);
	wire_start(&w, 3);
	assert_int_equal(wire_end(&w), 0);
	assert_int_equal(wire_flush(&w), 0);
	wire_free(&w);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	wire_init(&r, fd, -1);
	assert_int_equal(wire_recv(&r, &m), 0);
	assert_int_equal(m.type, 1);
	assert_string_equal(wire_str(&r, 0, 16, "field"), "kept");
	assert_int_equal(wire_recv(&r, &m), 0);
	assert_int_equal(m.type, 3);
	assert_int_equal(wire_recv(&r, &m), 1);
	wire_free(&r);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_too_large_to_send),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
