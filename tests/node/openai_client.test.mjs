// openai_client.test.mjs — weft serve driven by the official `openai` Node client (pinned in
// package-lock.json), so that the shapes the server sends are checked by the parser real
// applications use, not only by our own scripts. Run by tests/test_openai_node.sh, which starts
// the server and passes WEFT_TEST_URL (http://127.0.0.1:PORT), WEFT_TEST_KEY (its --api-key)
// and WEFT_TEST_MODEL (its model id). Uses only node:test and node:assert.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { APIError } from 'openai';

const url = process.env.WEFT_TEST_URL;
const key = process.env.WEFT_TEST_KEY;
const model = process.env.WEFT_TEST_MODEL;
if (!url || !key || !model) throw new Error('WEFT_TEST_URL, WEFT_TEST_KEY and WEFT_TEST_MODEL must be set');

// No retries: a retried 429/5xx would hide what the server answered.
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 60_000 });
const prompt = 'Once upon a time';

// expectAPIError(promise, status, code): the call fails with the client's APIError carrying
// the HTTP status and OpenAI's error fields.
async function expectAPIError(promise, status, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof APIError, `not an APIError: ${e}`);
    assert.equal(e.status, status, `status ${e.status}: ${e.message}`);
    if (code) assert.equal(e.code, code, `code ${e.code}: ${e.message}`);
    assert.equal(typeof e.error?.message, 'string');
    assert.equal(typeof e.type, 'string');
    return true;
  });
}

test('models.list and models.retrieve', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [model]);
  const m = await client.models.retrieve(model);
  assert.equal(m.id, model);
  assert.equal(m.object, 'model');
});

test('completions: non-streaming', async () => {
  const r = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(r.choices[0].text.length > 0);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 12);
});

test('completions: streaming text equals the non-streaming text', async () => {
  const whole = await client.completions.create({ model, prompt, max_tokens: 20, temperature: 0 });
  const stream = await client.completions.create({
    model, prompt, max_tokens: 20, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const c of stream) {
    chunks++;
    assert.equal(c.object, 'text_completion');
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      text += ch.text;
      finish = ch.finish_reason ?? finish;
    }
  }
  assert.ok(chunks > 2, `only ${chunks} chunks`);
  assert.equal(text, whole.choices[0].text);
  assert.equal(finish, 'length');
  assert.equal(usage?.completion_tokens, 20);
});

test('chat completions: non-streaming', async () => {
  const r = await client.chat.completions.create({
    model, max_tokens: 10, temperature: 0,
    messages: [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: prompt }],
  });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 10);
});

test('chat completions: streaming with include_usage', async () => {
  const messages = [{ role: 'user', content: prompt }];
  const whole = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 16, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '', role = null, finish = null, usage = null, last = null;
  for await (const c of stream) {
    assert.equal(c.object, 'chat.completion.chunk');
    last = c;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      role = ch.delta.role ?? role;
      text += ch.delta.content ?? '';
      finish = ch.finish_reason ?? finish;
    }
  }
  assert.equal(role, 'assistant');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.deepEqual(last.choices, [], 'the usage chunk comes last with no choices');
  assert.deepEqual(usage, whole.usage);
});

test('chat completions: the stream helper assembles the message', async () => {
  const runner = client.chat.completions.stream({
    model, max_tokens: 8, temperature: 0, messages: [{ role: 'user', content: prompt }],
  });
  const done = await runner.finalChatCompletion();
  assert.equal(done.choices[0].message.role, 'assistant');
  assert.equal(typeof done.choices[0].message.content, 'string');
});

test('seed: the same seed gives the same text, different seeds differ', async () => {
  const run = (seed) => client.completions.create({ model, prompt, max_tokens: 24, temperature: 1, seed })
    .then((r) => r.choices[0].text);
  const a = await run(1234), b = await run(1234);
  assert.equal(a, b);
  const others = await Promise.all([1, 2, 3, 4].map(run));
  assert.ok(others.some((t) => t !== a), 'four other seeds all gave the same 24 tokens');
  const c1 = await client.chat.completions.create({
    model, max_tokens: 16, temperature: 0.9, seed: 7, messages: [{ role: 'user', content: prompt }],
  });
  const c2 = await client.chat.completions.create({
    model, max_tokens: 16, temperature: 0.9, seed: 7, messages: [{ role: 'user', content: prompt }],
  });
  assert.equal(c1.choices[0].message.content, c2.choices[0].message.content);
});

test('errors: 400 for a bad max_tokens', async () => {
  await expectAPIError(client.completions.create({ model, prompt, max_tokens: 0 }), 400, 'invalid_value');
  await expectAPIError(client.completions.create({ model, prompt, max_tokens: -3 }), 400, 'invalid_value');
  await expectAPIError(client.completions.create({ model, prompt, max_tokens: 'ten' }), 400, 'invalid_type');
  await expectAPIError(client.completions.create({ model, prompt, max_tokens: 1e9 }), 400, 'context_length_exceeded');
  await expectAPIError(client.chat.completions.create({
    model, max_tokens: 0, messages: [{ role: 'user', content: 'x' }],
  }), 400, 'invalid_value');
  await expectAPIError(client.completions.create({ model, prompt, max_tokens: 0, stream: true }), 400, 'invalid_value');
});

test('errors: 400 surfaces as BadRequestError with param', async () => {
  await assert.rejects(client.completions.create({ model, prompt, temperature: 5 }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.param, 'temperature');
    return true;
  });
});

test('errors: 401 for a wrong or missing key', async () => {
  const wrong = new OpenAI({ baseURL: `${url}/v1`, apiKey: `${key}x`, maxRetries: 0 });
  await expectAPIError(wrong.completions.create({ model, prompt, max_tokens: 2 }), 401, 'invalid_api_key');
  await expectAPIError(wrong.models.list(), 401, 'invalid_api_key');
  await assert.rejects(wrong.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.AuthenticationError);
  const empty = new OpenAI({ baseURL: `${url}/v1`, apiKey: ' ', maxRetries: 0 });
  await expectAPIError(empty.models.list(), 401, 'invalid_api_key');
});

test('errors: 404 for an unknown model id and an unknown route', async () => {
  // Generation ignores `model` (one model is served; docs/server.md); /v1/models/{id} checks it.
  await expectAPIError(client.models.retrieve('no-such-model'), 404, 'model_not_found');
  await assert.rejects(client.models.retrieve('no-such-model'), (e) => e instanceof OpenAI.NotFoundError);
  await expectAPIError(client.get('/nowhere'), 404, 'not_found');
});

test('a request with an unknown model name still generates (model is ignored)', async () => {
  const r = await client.completions.create({ model: 'gpt-4o', prompt, max_tokens: 2 });
  assert.equal(r.model, model);
});

test('an aborted stream does not break later requests', async () => {
  const ac = new AbortController();
  const stream = await client.completions.create(
    { model, prompt, max_tokens: 200, stream: true, ignore_eos: true }, { signal: ac.signal });
  // The client ends the iteration quietly (or with an abort error) once aborted.
  let n = 0;
  try {
    for await (const _ of stream) if (++n === 3) ac.abort();
  } catch (e) {
    assert.ok(e instanceof APIError || e.name === 'AbortError', `unexpected ${e}`);
  }
  assert.ok(n >= 3 && n < 100, `${n} chunks arrived after the abort`);
  const r = await client.completions.create({ model, prompt, max_tokens: 3 });
  assert.equal(r.usage.completion_tokens, 3);
});
