"""UI text in Chinese (default) and English. `Translator(lang)(key, **values)` formats one string."""

from __future__ import annotations

LANGUAGES = {"zh": "中文", "en": "English"}

# key: (Chinese, English)
TEXTS: dict[str, tuple[str, str]] = {
    "app_title": ("知库", "Zhiku"),
    "language": ("界面语言", "Language"),
    "page_kb": ("知识库管理", "Knowledge bases"),
    "page_chat": ("对话", "Dialogue"),
    "api_at": ("API：{url}", "API: {url}"),
    "config_error": (
        "配置无效，界面无法启动：\n\n{detail}",
        "The settings are invalid, the UI cannot start:\n\n{detail}",
    ),
    "err_unreachable": (
        "无法连接 API 服务（{detail}）。请先启动 API：`python -m server.api`（或 `python startup.py`），"
        "并检查 webui.api_base_url 设置。",
        "Cannot reach the API ({detail}). Start it with `python -m server.api` (or `python startup.py`) and check "
        "the webui.api_base_url setting.",
    ),
    "err_client": ("请求被拒绝（HTTP {status}）：{detail}", "The request was refused (HTTP {status}): {detail}"),
    "err_server": ("API 出错（HTTP {status}）：{detail}", "The API failed (HTTP {status}): {detail}"),
    "yes": ("是", "yes"),
    "saved": ("已保存", "Saved"),
    "cancel": ("取消", "Cancel"),
    "working": ("处理中…", "Working…"),
    "page": ("页码", "Page"),
    "failed_line": ("{name}：{reason}", "{name}: {reason}"),
    # knowledge bases
    "kb_title": ("知识库管理", "Knowledge base management"),
    "kb_pick": ("选择知识库", "Knowledge base"),
    "kb_new_option": ("+ 新建知识库", "+ New knowledge base"),
    "kb_create": ("新建知识库", "Create a knowledge base"),
    "kb_name": ("知识库名称", "Name"),
    "kb_name_help": ("可用中文，最多 64 个字符", "Chinese allowed, at most 64 characters"),
    "kb_name_required": ("请填写知识库名称", "Enter a name for the knowledge base"),
    "kb_info": ("知识库简介", "Description"),
    "kb_vs_type": ("向量库类型", "Vector store"),
    "kb_embed_model": ("嵌入模型", "Embedding model"),
    "kb_create_button": ("新建", "Create"),
    "kb_created": ("已新建知识库「{name}」", "Created knowledge base “{name}”"),
    "kb_summary": (
        "向量库：{vs} · 嵌入模型：{model} · 文件数：{files}",
        "Vector store: {vs} · embedding model: {model} · files: {files}",
    ),
    "kb_settings": ("知识库设置", "Knowledge base settings"),
    "kb_save_info": ("保存简介", "Save description"),
    "kb_delete": ("删除知识库", "Delete knowledge base"),
    "kb_delete_confirm": (
        "确定删除知识库「{name}」？其文件和向量都会被删除，且无法恢复。",
        "Delete knowledge base “{name}”? Its files and vectors are removed for good.",
    ),
    "kb_delete_yes": ("确认删除", "Delete"),
    "kb_deleted": ("已删除知识库「{name}」", "Deleted knowledge base “{name}”"),
    "section": ("功能", "Section"),
    "section_files": ("文件", "Files"),
    "section_upload": ("上传", "Upload"),
    "section_chunks": ("分块编辑", "Chunks"),
    "section_search": ("检索测试", "Search test"),
    "section_rebuild": ("重建向量库", "Rebuild"),
    # files
    "sort_by": ("排序", "Sort by"),
    "sort_file_name": ("文件名", "File name"),
    "sort_ext": ("类型", "Type"),
    "sort_size": ("大小", "Size"),
    "sort_chunk_count": ("分块数", "Chunks"),
    "sort_loader": ("加载器", "Loader"),
    "sort_updated_at": ("更新时间", "Updated"),
    "descending": ("降序", "Descending"),
    "page_size": ("每页", "Per page"),
    "files_total": ("共 {total} 个文件 · 第 {page}/{pages} 页", "{total} files · page {page} of {pages}"),
    "files_empty": ("还没有文件，请在「上传」中添加。", "No files yet: add some under “Upload”."),
    "col_file_name": ("文件名", "File"),
    "col_ext": ("类型", "Type"),
    "col_size": ("大小", "Size"),
    "col_chunks": ("分块数", "Chunks"),
    "col_loader": ("加载器", "Loader"),
    "col_updated": ("更新时间", "Updated"),
    "col_in_folder": ("在文件夹", "In folder"),
    "col_in_db": ("在向量库", "In store"),
    "col_custom": ("手动编辑", "Edited"),
    "col_reason": ("原因", "Reason"),
    "files_selected": ("选中的文件", "Selected files"),
    "files_choose": ("在表格中勾选，或在此选择文件", "Tick rows in the table, or choose files here"),
    "files_download": ("下载", "Download"),
    "files_save_as": ("保存 {name}", "Save {name}"),
    "files_download_limit": ("一次最多打包 {n} 个文件", "At most {n} files go into one zip"),
    "files_revectorize": ("重新向量化", "Re-vectorize"),
    "files_revectorized": ("已重新向量化 {n} 个文件", "Re-vectorized {n} files"),
    "files_drop_from_store": ("从向量库删除", "Remove from store"),
    "files_dropped": ("已从向量库删除 {n} 个文件（源文件保留）", "Removed {n} files from the store (files kept)"),
    "files_confirm_disk": ("同时删除源文件", "Also delete the files"),
    "files_delete_disk": ("彻底删除", "Delete files"),
    "files_deleted": ("已删除 {n} 个文件", "Deleted {n} files"),
    "folder_only_title": ("仅在文件夹中（未向量化）的文件", "Files in the folder only (not vectorized)"),
    "folder_only_none": ("没有未向量化的文件", "Every file in the folder is vectorized"),
    "folder_only_help": ("文件夹中有 {n} 个文件尚未向量化", "{n} files in the folder are not vectorized"),
    "folder_only_vectorize": ("向量化选中的文件", "Vectorize the selected files"),
    # upload
    "upload_files": ("拖放或选择文件（{types}）", "Drop or choose files ({types})"),
    "chunk_size": ("分块长度（汉字数，2 个英文字符计 1）", "Chunk size (Chinese chars; 2 ASCII chars count 1)"),
    "chunk_overlap": ("相邻分块重叠（同上）", "Chunk overlap (same units)"),
    "zh_title_enhance": ("标题增强", "Title enhancement"),
    "override": ("覆盖同名文件", "Replace files with the same name"),
    "upload_button": ("上传并向量化", "Upload and vectorize"),
    "upload_none": ("请先选择文件", "Choose some files first"),
    "overlap_too_big": ("重叠必须小于分块长度", "The overlap must be smaller than the chunk size"),
    "upload_starting": ("准备上传 {n} 个文件…", "Uploading {n} files…"),
    "upload_progress": ("第 {i}/{n} 批：{files}", "Batch {i} of {n}: {files}"),
    "upload_done": ("上传完成：成功 {ok} 个，失败 {failed} 个", "Upload finished: {ok} succeeded, {failed} failed"),
    "upload_failed_title": ("{n} 个文件失败：", "{n} files failed:"),
    # chunks
    "chunks_file": ("文件", "File"),
    "chunks_count": ("共 {n} 个分块", "{n} chunks"),
    "chunk_text": ("分块内容", "Chunk text"),
    "chunk_delete": ("删除此分块", "Delete this chunk"),
    "chunk_new": ("新增分块（可选）", "Add a chunk (optional)"),
    "chunks_save": ("保存修改", "Save changes"),
    "chunks_nothing": ("没有修改", "Nothing changed"),
    "chunks_saved": ("已保存 {n} 处分块修改", "Saved {n} chunk changes"),
    # search and rebuild
    "search_query": ("检索问题", "Query"),
    "top_k": ("返回条数 top_k", "Results (top_k)"),
    "score_threshold": ("相似度阈值（0–1，越高越严格）", "Score threshold (0–1, higher is stricter)"),
    "search_button": ("检索", "Search"),
    "search_mode": ("检索方式", "Search mode"),
    "search_mode_dense": ("向量检索", "dense (vectors)"),
    "search_mode_keyword": ("关键词检索（BM25）", "keyword (BM25)"),
    "search_mode_hybrid": ("混合检索（向量 + 关键词）", "hybrid (vectors + keywords)"),
    "search_mode_inherit": ("默认：{mode}", "default: {mode}"),
    "search_mode_each": ("各知识库自己的设置", "each knowledge base's own"),
    "kb_search_mode": ("本知识库的默认检索方式", "Default search mode of this knowledge base"),
    "kb_save_search_mode": ("保存检索方式", "Save search mode"),
    "search_empty_query": ("请输入检索问题", "Enter a query"),
    "search_no_hits": ("没有达到阈值的分块，可降低阈值再试", "No chunk reached the threshold; try a lower one"),
    "search_hits": ("命中 {n} 个分块（按相似度排序）", "{n} chunks, best first"),
    "hit_title": ("**#{rank}** · 相似度 {score} · {file} {page}", "**#{rank}** · score {score} · {file} {page}"),
    "hit_page": ("第 {page} 页", "page {page}"),
    "rebuild_help": (
        "按文件夹中的文件重新解析并向量化整个知识库；重建期间检索仍可使用。",
        "Re-parses and re-embeds every file of the folder; searches keep working meanwhile.",
    ),
    "rebuild_button": ("重建向量库", "Rebuild vector store"),
    "rebuild_starting": ("正在重建…", "Rebuilding…"),
    "rebuild_progress": ("({i}/{n}) {doc}", "({i} / {n}) {doc}"),
    "rebuild_done": ("向量库重建完成", "The vector store was rebuilt"),
    # dialogue
    "chat_title": ("对话", "Dialogue"),
    "chat_mode": ("对话模式", "Mode"),
    "mode_llm_chat": ("LLM 对话", "LLM chat"),
    "mode_knowledge_base_chat": ("知识库问答", "Knowledge base chat"),
    "mode_file_chat": ("文件对话", "File chat"),
    "chat_model": ("大模型", "Model"),
    "chat_models_unavailable": ("无法获取模型列表：{detail}", "Cannot list the models: {detail}"),
    "temperature": ("温度 temperature", "Temperature"),
    "history_len": ("历史对话轮数", "History rounds"),
    "prompt_template": ("提示词模板", "Prompt template"),
    "chat_kb": ("知识库（可多选，结果合并排序）", "Knowledge bases (several: one merged ranking)"),
    "chat_need_kb": ("请先新建一个知识库", "Create a knowledge base first"),
    "chat_files": ("本次对话使用的文件", "Files for this conversation"),
    "chat_files_upload": ("上传文件", "Upload files"),
    "chat_files_ready": ("文件已就绪，可以提问", "The files are ready: ask away"),
    "chat_need_files": ("请先在侧边栏上传文件", "Upload files in the sidebar first"),
    "chat_clear": ("清空对话", "Clear conversation"),
    "chat_export": ("导出为 Markdown", "Export as Markdown"),
    "chat_export_title": ("知库对话记录", "Zhiku conversation"),
    "chat_placeholder": ("输入问题，回车发送", "Ask something and press Enter"),
    "chat_you": ("用户", "You"),
    "chat_assistant": ("助手", "Assistant"),
    "chat_sources": ("出处（{n} 条）", "Sources ({n})"),
    "chat_feedback_sent": ("感谢反馈", "Thanks for the feedback"),
    "no_model_help": (
        "尚未配置大模型：在 configs/settings.yaml 的 llm_models 中添加一个模型（本地目录或 OpenAI 兼容地址），"
        "设置 default_llm，然后用 `python startup.py` 启动服务。知识库问答仍会显示检索到的出处。",
        "No model is configured: add one under llm_models in configs/settings.yaml (a local folder or an "
        "OpenAI-compatible URL), set default_llm, then start with `python startup.py`. Knowledge base chat "
        "still shows the sources it finds.",
    ),
    "no_model_answer": (
        "（未配置大模型，无法生成回答；以下是检索到的出处。）",
        "(No model is configured, so there is no answer; here are the sources found.)",
    ),
}


class Translator:
    def __init__(self, lang: str) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"unknown UI language {lang!r}; use one of {sorted(LANGUAGES)}")
        self.lang = lang
        self._index = 0 if lang == "zh" else 1

    def __call__(self, key: str, **values: object) -> str:
        text = TEXTS[key][self._index]
        return text.format(**values) if values else text
