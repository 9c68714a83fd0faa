// A customer's webhook receiver, as the SESMetric reference tells customers to write it.
// Usage: WEBHOOK_SECRET=whsec_... node receiver.js   (prints {"port": N} once listening)
// Answers 200 when X-SM-Signature verifies over the raw body, 401 otherwise.
import http from 'http';

// ---- the reference's snippet, verbatim ------------------------------------------------------
import crypto from 'crypto';
function verify(rawBody, header, secret) {
const expected = 'sha256=' + crypto
.createHmac('sha256', secret)
.update(rawBody)
.digest('hex');
// Use timingSafeEqual to defeat timing attacks.
return crypto.timingSafeEqual(Buffer.from(header), Buffer.from(expected));
}
// ---- end of the reference's snippet ---------------------------------------------------------

// Added: crypto.timingSafeEqual THROWS when the two buffers differ in length, so a missing or
// malformed header would crash the reference's verify(). Check the length first.
function verifySafely(rawBody, header, secret) {
  const expectedLength = 'sha256='.length + 64;
  if (typeof header !== 'string' || Buffer.byteLength(header) !== expectedLength) return false;
  return verify(rawBody, header, secret);
}

const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error('WEBHOOK_SECRET is required');
  process.exit(2);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const rawBody = Buffer.concat(chunks);
    const ok = verifySafely(rawBody, req.headers['x-sm-signature'], secret);
    let eventType = null;
    if (ok) eventType = JSON.parse(rawBody.toString('utf8')).event_type;
    console.log(JSON.stringify({ verified: ok, event_id: req.headers['x-sm-event-id'] ?? null, event_type: eventType }));
    res.writeHead(ok ? 200 : 401, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ ok }));
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
