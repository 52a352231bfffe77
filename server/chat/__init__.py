"""Chat with LLMs over the OpenAI protocol: model registry, streaming client, prompts, conversations, KB chat."""
