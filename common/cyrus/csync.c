/* csync.c: the connection to a Cyrus sync_server (csync.h): TCP with a
 * deadline on every wait, the banner, SASL PLAIN, buffered commands and
 * replies whose "* " lines may carry {N} literals. Learnt from Cyrus's
 * imap/sync_server.c (cmdloop, dobanner, cmd_authenticate) and
 * imap/sync_support.c (sync_parse_response); no Cyrus code. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "cyrus/csync.h"

#define CSYNC_BUF 65536
/* a reply line (with its literals) larger than this is refused */
#define CSYNC_LINE_MAX (256u << 20)

struct csync {
	int fd;
	int timeout_ms;
	int broken;                 /* the connection cannot be used any more */
	char name[300];             /* HOST:PORT */
	char out[CSYNC_BUF];
	size_t outlen;
	char *in;                   /* read buffer */
	size_t inpos, inlen, incap;
};

const char *
csync_name(const struct csync *c)
{
	return c->name;
}

int
csync_parse_server(const char *spec, char **host, char **port, struct chj_error *e)
{
	const char *colon, *h = spec, *hend;

	*host = *port = NULL;
	if (spec == NULL || *spec == '\0')
		return chj_error_set(e, CHJ_ERR_INVALID, 0, "no server named");
	if (*spec == '[') {
		hend = strchr(spec, ']');
		if (hend == NULL || hend == spec + 1 || (hend[1] != '\0' && hend[1] != ':'))
			return chj_error_set(e, CHJ_ERR_INVALID, 0, "bad server '%s': expected [ADDRESS]:PORT",
			    spec);
		h = spec + 1;
		colon = hend[1] == ':' ? hend + 1 : NULL;
	} else {
		colon = strchr(spec, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return chj_error_set(e, CHJ_ERR_INVALID, 0, "bad server '%s': write an IPv6 address "
			    "as [ADDRESS]:PORT", spec);
		hend = colon ? colon : spec + strlen(spec);
	}
	if (hend == h)
		return chj_error_set(e, CHJ_ERR_INVALID, 0, "bad server '%s': no host", spec);
	if (colon != NULL) {
		const char *p;

		if (colon[1] == '\0')
			return chj_error_set(e, CHJ_ERR_INVALID, 0, "bad server '%s': no port after ':'", spec);
		for (p = colon + 1; *p; p++)
			if (*p < '0' || *p > '9' || p - colon > 5)
				return chj_error_set(e, CHJ_ERR_INVALID, 0, "bad server '%s': the port is not a "
				    "number from 1 to 65535", spec);
		if (atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
			return chj_error_set(e, CHJ_ERR_INVALID, 0, "bad server '%s': the port is not a "
			    "number from 1 to 65535", spec);
	}
	*host = strndup(h, (size_t)(hend - h));
	*port = strdup(colon ? colon + 1 : CSYNC_DEFAULT_PORT);
	if (*host == NULL || *port == NULL) {
		free(*host);
		free(*port);
		*host = *port = NULL;
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	return 0;
}

/* Copies s into out, control and 8-bit bytes as \xNN, at most outlen. */
static void
printable(char *out, size_t outlen, const char *s, size_t n)
{
	size_t o = 0, i;

	for (i = 0; i < n && o + 5 < outlen; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch >= 0x7f)
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
		else
			out[o++] = (char)ch;
	}
	if (i < n && o + 4 < outlen)
		o += (size_t)snprintf(out + o, outlen - o, "...");
	out[o] = '\0';
}

/* Waits until fd is ready for events; -1 with e on a timeout or error. */
static int
wait_fd(struct csync *c, short events, struct chj_error *e)
{
	struct pollfd p = { .fd = c->fd, .events = events };
	int r;

	do
		r = poll(&p, 1, c->timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		c->broken = 1;
		return chj_error_set(e, CHJ_ERR_SYS, 0, "csync server %s: no %s within %d s", c->name,
		    events & POLLOUT ? "progress sending" : "reply", c->timeout_ms / 1000);
	}
	if (r < 0) {
		c->broken = 1;
		return chj_error_set(e, CHJ_ERR_SYS, errno, "csync server %s", c->name);
	}
	return 0;
}

static int
flush_out(struct csync *c, struct chj_error *e)
{
	size_t done = 0;

	while (done < c->outlen) {
		ssize_t n = send(c->fd, c->out + done, c->outlen - done, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(c, POLLOUT, e) < 0)
				return -1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			c->broken = 1;
			return chj_error_set(e, CHJ_ERR_SYS, errno, "csync server %s: cannot send", c->name);
		}
		done += (size_t)n;
	}
	c->outlen = 0;
	return 0;
}

int
csync_write(struct csync *c, const void *p, size_t len, struct chj_error *e)
{
	const char *s = p;

	if (c->broken)
		return chj_error_set(e, CHJ_ERR_SYS, 0, "csync server %s: the connection was lost", c->name);
	while (len > 0) {
		size_t k = sizeof c->out - c->outlen;

		if (k == 0) {
			if (flush_out(c, e) < 0)
				return -1;
			continue;
		}
		if (k > len)
			k = len;
		memcpy(c->out + c->outlen, s, k);
		c->outlen += k;
		s += k;
		len -= k;
	}
	return 0;
}

/* Reads more input into c->in; -1 with e at the end or on an error. */
static int
fill_in(struct csync *c, struct chj_error *e)
{
	ssize_t n;

	if (c->inpos > 0 && c->inpos == c->inlen)
		c->inpos = c->inlen = 0;
	if (c->incap - c->inlen < CSYNC_BUF) {
		char *b;

		if (c->inpos > 0) {
			memmove(c->in, c->in + c->inpos, c->inlen - c->inpos);
			c->inlen -= c->inpos;
			c->inpos = 0;
		}
		if (c->incap - c->inlen < CSYNC_BUF) {
			b = realloc(c->in, c->incap + CSYNC_BUF * 2);
			if (b == NULL)
				return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
			c->in = b;
			c->incap += CSYNC_BUF * 2;
		}
	}
	for (;;) {
		if (wait_fd(c, POLLIN, e) < 0)
			return -1;
		n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		break;
	}
	if (n < 0) {
		c->broken = 1;
		return chj_error_set(e, CHJ_ERR_SYS, errno, "csync server %s: cannot read", c->name);
	}
	if (n == 0) {
		c->broken = 1;
		return chj_error_set(e, CHJ_ERR_SYS, 0, "csync server %s closed the connection", c->name);
	}
	c->inlen += (size_t)n;
	return 0;
}

/* The size N of a "{N}" or "{N+}" ending line[0..n), or -1. */
static long long
literal_at_end(const char *line, size_t n)
{
	size_t i;
	long long v = 0;

	if (n < 3 || line[n - 1] != '}')
		return -1;
	i = n - 1;
	if (line[i - 1] == '+')
		i--;
	if (i == 0)
		return -1;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == 0 || line[i - 1] != '{' || (n - 1) - i > 10 || line[i] == '}' || line[i] == '+')
		return -1;
	for (; line[i] >= '0' && line[i] <= '9'; i++)
		v = v * 10 + (line[i] - '0');
	return v;
}

/* Reads one logical line (its literals inside) into *line (allocated,
 * NUL-ended, without the final CRLF). */
static int
read_line(struct csync *c, char **line, size_t *len, struct chj_error *e)
{
	char *buf = NULL;
	size_t n = 0, cap = 0;

	for (;;) {
		char *nl = c->inlen > c->inpos ? memchr(c->in + c->inpos, '\n', c->inlen - c->inpos) : NULL;
		size_t take, seg;
		long long lit;

		if (nl == NULL) {
			if (c->inlen - c->inpos + n > CSYNC_LINE_MAX)
				goto toolong;
			if (fill_in(c, e) < 0)
				goto fail;
			continue;
		}
		take = (size_t)(nl - (c->in + c->inpos)) + 1;
		seg = take - 1;
		if (seg > 0 && c->in[c->inpos + seg - 1] == '\r')
			seg--;
		if (n + take + 1 > CSYNC_LINE_MAX)
			goto toolong;
		if ((buf = array_reserve(buf, n + take + 1, &cap, 1, 256)) == NULL)
			goto nomem;
		memcpy(buf + n, c->in + c->inpos, seg);
		n += seg;
		c->inpos += take;
		lit = literal_at_end(buf, n);
		if (lit < 0) {
			buf[n] = '\0';
			*line = buf;
			*len = n;
			return 0;
		}
		/* the literal: CRLF, then exactly lit bytes, then the line goes on */
		if ((unsigned long long)lit > CSYNC_LINE_MAX - n - 3)
			goto toolong;
		if ((buf = array_reserve(buf, n + 2 + (size_t)lit + 1, &cap, 1, 256)) == NULL)
			goto nomem;
		memcpy(buf + n, "\r\n", 2);
		n += 2;
		while ((size_t)lit > 0) {
			size_t have = c->inlen - c->inpos, k = (size_t)lit < have ? (size_t)lit : have;

			if (have == 0) {
				if (fill_in(c, e) < 0)
					goto fail;
				continue;
			}
			memcpy(buf + n, c->in + c->inpos, k);
			n += k;
			c->inpos += k;
			lit -= (long long)k;
		}
	}
toolong:
	c->broken = 1;
	chj_error_set(e, CHJ_ERR_CORRUPT, 0, "csync server %s: a reply line longer than %u MB",
	    c->name, CSYNC_LINE_MAX >> 20);
	goto fail;
nomem:
	chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
fail:
	free(buf);
	return -1;
}

void
csync_reply_free(struct csync_reply *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->items[i].key);
		dl_free(&r->items[i].value);
	}
	free(r->items);
	memset(r, 0, sizeof *r);
}

/* "* KEY value" into r. */
static int
add_item(struct csync *c, struct csync_reply *r, const char *line, size_t len, struct chj_error *e)
{
	const char *p = line + 2, *sp;
	struct csync_item *it;
	struct chj_error de;
	char show[200];

	sp = memchr(p, ' ', len - 2);
	if (sp == NULL || sp == p) {
		printable(show, sizeof show, line, len);
		c->broken = 1;
		return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "csync server %s: malformed reply line '%s'",
		    c->name, show);
	}
	if ((it = array_grow(r->items, r->n, &r->cap, sizeof *r->items, 8)) == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	r->items = it;
	it = &r->items[r->n];
	memset(it, 0, sizeof *it);
	if ((it->key = strndup(p, (size_t)(sp - p))) == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	if (dl_parse(&it->value, sp + 1, len - (size_t)(sp + 1 - line), NULL, &de) < 0) {
		free(it->key);
		printable(show, sizeof show, line, len);
		c->broken = 1;
		return chj_error_set(e, de.code, 0, "csync server %s: malformed reply line '%s': %s",
		    c->name, show, de.msg);
	}
	r->n++;
	return 0;
}

int
csync_reply_read(struct csync *c, const char *what, struct csync_reply *r, struct chj_error *e)
{
	char *line = NULL, show[400];
	size_t len;

	if (c->broken)
		return chj_error_set(e, CHJ_ERR_SYS, 0, "csync server %s: the connection was lost", c->name);
	if (flush_out(c, e) < 0)
		return -1;
	for (;;) {
		if (read_line(c, &line, &len, e) < 0)
			return -1;
		if (len >= 2 && line[0] == '*' && line[1] == ' ') {
			int rc = r != NULL ? add_item(c, r, line, len, e) : 0;

			free(line);
			if (rc < 0)
				return -1;
			continue;
		}
		break;
	}
	if (len >= 2 && strncmp(line, "OK", 2) == 0 && (len == 2 || line[2] == ' ')) {
		free(line);
		return 0;
	}
	printable(show, sizeof show, line, len);
	free(line);
	if (strncmp(show, "NO ", 3) == 0)
		return chj_error_set(e, CHJ_ERR_REFUSED, 0, "csync server %s refused %s: %s", c->name, what,
		    show + 3);
	c->broken = 1;
	if (strncmp(show, "BAD ", 4) == 0 || strncmp(show, "BYE ", 4) == 0)
		return chj_error_set(e, CHJ_ERR_REFUSED, 0, "csync server %s refused %s: %s", c->name, what,
		    show);
	return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "csync server %s: unexpected reply to %s: '%s'",
	    c->name, what, show);
}

int
csync_cmd(struct csync *c, const void *cmd, size_t len, const char *what, struct csync_reply *r,
    struct chj_error *e)
{
	if (csync_write(c, cmd, len, e) < 0)
		return -1;
	return csync_reply_read(c, what, r, e);
}

/* ---- opening ---- */

static int
dial(struct csync *c, const char *host, const char *port, struct chj_error *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	int r, err = 0;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0)
		return chj_error_set(e, CHJ_ERR_SYS, 0, "csync server %s: cannot resolve '%s': %s", c->name,
		    host, gai_strerror(r));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd p;
		socklen_t sl = sizeof err;

		c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (c->fd < 0) {
			err = errno;
			continue;
		}
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		if (errno == EINPROGRESS) {
			p.fd = c->fd;
			p.events = POLLOUT;
			do
				r = poll(&p, 1, c->timeout_ms);
			while (r < 0 && errno == EINTR);
			if (r == 1 && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) == 0 && err == 0)
				break;
			if (r == 0)
				err = ETIMEDOUT;
		}
		close(c->fd);
		c->fd = -1;
	}
	freeaddrinfo(res);
	if (c->fd < 0)
		return chj_error_set(e, CHJ_ERR_SYS, err, "cannot connect to csync server %s", c->name);
	return 0;
}

/* The banner: "* ..." lines up to "* OK ..." (capabilities are not needed:
 * PLAIN is tried, and the server says no if it does not offer it). */
static int
banner(struct csync *c, struct chj_error *e)
{
	char *line = NULL, show[200];
	size_t len;
	int lines = 0;

	for (;;) {
		if (read_line(c, &line, &len, e) < 0)
			return -1;
		if (len >= 4 && strncmp(line, "* OK", 4) == 0) {
			free(line);
			return 0;
		}
		if (len < 2 || strncmp(line, "* ", 2) != 0 || ++lines > 64) {
			printable(show, sizeof show, line, len);
			free(line);
			c->broken = 1;
			return chj_error_set(e, CHJ_ERR_CORRUPT, 0, "%s does not greet as a Cyrus csync server: "
			    "'%s'", c->name, show);
		}
		free(line);
	}
}

static int
auth_plain(struct csync *c, const char *authname, const char *password, struct chj_error *e)
{
	size_t an = strlen(authname), pn = strlen(password), n = an + pn + 2;
	unsigned char *raw = malloc(n);
	char *b64 = malloc(4 * ((n + 2) / 3) + 1), *cmd = NULL;
	int rc = -1, len;

	if (raw == NULL || b64 == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	raw[0] = '\0';
	memcpy(raw + 1, authname, an);
	raw[an + 1] = '\0';
	memcpy(raw + an + 2, password, pn);
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
	len = asprintf(&cmd, "AUTHENTICATE PLAIN %s\r\n", b64);
	if (len < 0) {
		cmd = NULL;
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	rc = csync_cmd(c, cmd, (size_t)len, "the login", NULL, e);
	if (rc < 0 && e->code == CHJ_ERR_REFUSED) {
		char why[sizeof e->msg];

		snprintf(why, sizeof why, "%s", e->msg);
		chj_error_set(e, CHJ_ERR_REFUSED, 0, "csync server %s refused the login as '%s'%s%s",
		    c->name, authname, strstr(why, ": ") ? strstr(why, ": ") : "", "");
	}
out:
	if (raw != NULL)
		memset(raw, 0, n);
	if (cmd != NULL)
		memset(cmd, 0, strlen(cmd));
	free(raw);
	free(b64);
	free(cmd);
	return rc;
}

int
csync_open(struct csync **out, const struct csync_opts *o, struct chj_error *e)
{
	struct csync *c = calloc(1, sizeof *c);

	*out = NULL;
	if (c == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	c->fd = -1;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 600000;
	snprintf(c->name, sizeof c->name, strchr(o->host, ':') ? "[%s]:%s" : "%s:%s", o->host, o->port);
	if (dial(c, o->host, o->port, e) < 0 || banner(c, e) < 0 ||
	    auth_plain(c, o->authname, o->password ? o->password : "", e) < 0) {
		c->broken = 1;
		csync_close(c);
		return -1;
	}
	*out = c;
	return 0;
}

void
csync_close(struct csync *c)
{
	struct chj_error e;

	if (c == NULL)
		return;
	if (c->fd >= 0 && !c->broken) {
		/* the server says "OK Finished" and hangs up: not waited for long */
		c->timeout_ms = 5000;
		csync_cmd(c, "EXIT\r\n", 6, "EXIT", NULL, &e);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c);
}
