"""Talk to llmgw with the official OpenAI SDK: `make run` in one terminal, then
`.venv/bin/python examples/quickstart.py` in another."""

import os

from openai import OpenAI

client = OpenAI(
    base_url=os.environ.get("LLMGW_URL", "http://127.0.0.1:10000/v1"),
    api_key=os.environ.get("LLMGW_KEY", "sk-llmgw-demo"),
)

for model in ("fast", "claude-haiku-4-5"):
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello in five words."}]
    )
    print(f"{model} → {reply.model}: {reply.choices[0].message.content} ({reply.usage.total_tokens} tokens)")

    print(f"{model} streaming: ", end="", flush=True)
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Count to five."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
        if chunk.usage:
            print(f" ({chunk.usage.total_tokens} tokens)")
