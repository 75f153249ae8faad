/*
 * frame.c: 2-byte big-endian framing over byte buffers (or 4-byte,
 * frame=u32be).  No I/O and no allocation, so it links alone into the
 * fuzzer.
 */
#include <string.h>

#include "base.h"

void
frame_put(uint8_t *hdr, size_t len)
{
	hdr[0] = (uint8_t)(len >> 8);
	hdr[1] = (uint8_t)len;
}

size_t
frame_get(const uint8_t *hdr)
{
	return (size_t)hdr[0] << 8 | hdr[1];
}

size_t
frame_len(const struct frame_buf *fb, const uint8_t *at)
{
	if (fb->hdr == FRAME_HDR)
		return frame_get(at);
	return (size_t)at[0] << 24 | (size_t)at[1] << 16 | (size_t)at[2] << 8 |
	    at[3];
}

void
frame_buf_init(struct frame_buf *fb, uint8_t *buf, size_t cap, size_t max,
    size_t hdr)
{
	fb->buf = buf;
	fb->cap = cap;
	fb->max = max;
	fb->hdr = hdr;
	fb->rpos = fb->wpos = fb->skip = 0;
}

size_t
frame_buf_room(struct frame_buf *fb, int idle, uint8_t **at)
{
	size_t	 left;

	if (idle && fb->rpos > 0) {
		left = fb->wpos - fb->rpos;
		/*
		 * Move the unfinished frame to the front only when a full
		 * frame could not grow in place, or when FRAME_HOT bytes
		 * have gone by: at most one frame's copy per FRAME_HOT
		 * bytes, and the bytes in use stay in the CPU's cache.
		 */
		if (left == 0)
			fb->rpos = fb->wpos = 0;
		else if (fb->rpos + fb->hdr + fb->max > fb->cap ||
		    fb->rpos >= FRAME_HOT) {
			memmove(fb->buf, fb->buf + fb->rpos, left);
			fb->rpos = 0;
			fb->wpos = left;
		}
	}
	*at = fb->buf + fb->wpos;
	return fb->cap - fb->wpos;
}

void
frame_buf_fill(struct frame_buf *fb, size_t n)
{
	fb->wpos += n;
}

enum frame_res
frame_buf_next(struct frame_buf *fb, uint8_t **frame, size_t *len)
{
	size_t	 avail, n;

	if (fb->skip > 0) {
		n = fb->wpos - fb->rpos;
		if (n > fb->skip)
			n = fb->skip;
		fb->rpos += n;
		fb->skip -= n;
		if (fb->skip > 0)
			return FRAME_MORE;
	}
	avail = fb->wpos - fb->rpos;
	if (avail < fb->hdr)
		return FRAME_MORE;
	n = frame_len(fb, fb->buf + fb->rpos);
	if (n > fb->max) {
		/* skip the payload as it arrives: the stream stays in sync */
		fb->rpos += fb->hdr;
		fb->skip = n;
		return FRAME_SKIP;
	}
	if (avail - fb->hdr < n)
		return FRAME_MORE;
	/* a u32be header's low half is the length as a 2-byte header
	 * (n <= max <= FRAME_MAX): the frame is handed out from there */
	*frame = fb->buf + fb->rpos + fb->hdr - FRAME_HDR;
	*len = n;
	fb->rpos += fb->hdr + n;
	return FRAME_OK;
}

int
frame_buf_partial(const struct frame_buf *fb)
{
	return fb->skip > 0 || fb->rpos < fb->wpos;
}

int
frame_buf_ready(const struct frame_buf *fb)
{
	size_t	 avail = fb->wpos - fb->rpos, n;

	if (fb->buf == NULL || avail == 0)
		return 0;
	if (fb->skip > 0)
		return 1;
	if (avail < fb->hdr)
		return 0;
	n = frame_len(fb, fb->buf + fb->rpos);
	return n > fb->max || avail - fb->hdr >= n;
}

int
frame_buf_left(const struct frame_buf *fb, size_t *whole)
{
	size_t	 pos = fb->rpos, n;

	*whole = 0;
	if (fb->skip > 0)
		return 1;
	while (fb->wpos - pos >= fb->hdr) {
		n = frame_len(fb, fb->buf + pos);
		if (fb->wpos - pos - fb->hdr < n)
			return 1;
		if (n <= fb->max)
			(*whole)++;
		pos += fb->hdr + n;
	}
	return pos < fb->wpos;
}

int
frame_buf_drop(struct frame_buf *fb)
{
	int	 partial = frame_buf_partial(fb);

	fb->wpos = fb->rpos;
	fb->skip = 0;
	return partial;
}

size_t
frame_buf_toskip(const struct frame_buf *fb)
{
	return fb->rpos == fb->wpos ? fb->skip : 0;
}

void
frame_buf_skipped(struct frame_buf *fb, size_t n)
{
	fb->skip -= n < fb->skip ? n : fb->skip;
}
