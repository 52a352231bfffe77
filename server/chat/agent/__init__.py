"""Agent chat: a tool-calling loop over the OpenAI-compatible chat API, with KB search, calculator and date tools."""
