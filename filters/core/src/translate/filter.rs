//! The translate filter itself: per try, find the provider, swap the credentials, pick the
//! translator for the client's dialect and the provider's wire format, and run it over the
//! request and the answer.

use super::*;

/// Request headers that carry the *client's* credentials (or select the account those belong
/// to: OpenAI answers 401 when `openai-organization` does not match the key); never forwarded
/// to a provider, which gets llmgw's key instead.
pub(super) const CLIENT_CREDENTIALS: [&str; 5] = [
    "authorization",
    "x-api-key",
    "api-key",
    "openai-organization",
    "openai-project",
];

pub(super) const EMBEDDINGS: &str = "/v1/embeddings";

/// The translate filter's compiled configuration.
#[derive(Debug)]
pub struct TranslateRoot {
    pub(super) providers: Rc<[Provider]>,
    pub(super) metrics_config: MetricsConfig,
    pub(super) metrics: Metrics,
}

impl TranslateRoot {
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }
}

impl FilterRoot for TranslateRoot {
    type Filter = TranslateFilter;
    const NAME: &'static str = "llmgw.translate";
    const UNUSED_CALLBACKS: &'static [Callback] = &[];

    fn configure(json: &[u8], env: &dyn Env) -> Result<Self, ConfigError> {
        let raw: RawConfig = config::parse(json)?;
        let metrics_config = raw.metrics;
        let providers = compile(raw, env)?;
        Ok(Self {
            providers: providers.into(),
            metrics_config,
            metrics: Metrics::default(),
        })
    }

    fn new_filter(&self) -> TranslateFilter {
        TranslateFilter {
            providers: Rc::clone(&self.providers),
            provider: None,
            upstream_model: None,
            translator: None,
            chat: false,
            replied: false,
            mode: ResponseMode::Untouched,
            force_usage: false,
            count_tokens: false,
            api: ClientApi::ChatCompletions,
            metrics_config: self.metrics_config,
            metrics: self.metrics.clone(),
            telemetry: TryTelemetry::default(),
        }
    }
}

/// One try through the translate filter.
pub struct TranslateFilter {
    pub(super) providers: Rc<[Provider]>,
    pub(super) provider: Option<usize>,
    pub(super) upstream_model: Option<String>,
    /// Set for `POST /v1/chat/completions` only; other paths pass through unread.
    pub(super) translator: Option<Box<dyn Translator>>,
    pub(super) chat: bool,
    /// A local reply was sent; the remaining callbacks do nothing.
    pub(super) replied: bool,
    pub(super) mode: ResponseMode,
    /// ratelimit forced the stream's usage ([`RateLimitFacts::force_usage`]): ask the
    /// provider for it though the client did not (ratelimit charges it, then hides it).
    pub(super) force_usage: bool,
    /// A Messages `count_tokens` this try answers itself with an estimate.
    pub(super) count_tokens: bool,
    /// The client's dialect: local answers are rendered in it.
    pub(super) api: ClientApi,
    pub(super) metrics_config: MetricsConfig,
    pub(super) metrics: Metrics,
    pub(super) telemetry: TryTelemetry,
}

impl TranslateFilter {
    /// The provider serving this try, once the request headers were seen.
    pub fn provider(&self) -> Option<&str> {
        self.provider
            .and_then(|i| self.providers.get(i))
            .map(|p| p.name.as_str())
    }

    /// Token usage of this try in OpenAI terms, once the provider reported it (for a streamed
    /// answer: after its final usage event). `None` for responses translate does not read
    /// (openai-schema non-streamed answers pass through unread).
    pub fn usage(&self) -> Option<Usage> {
        self.translator.as_ref().and_then(|t| t.usage())
    }

    /// `count_tokens` on a backend without it: the estimate, answered here. It spends no
    /// tokens, which the usage handed on says.
    #[cfg(feature = "anthropic")]
    pub(super) fn count_tokens_locally(&mut self, host: &mut dyn Host, size: usize) -> Flow {
        match count_tokens::estimate_input_tokens(&host.request_body(size)) {
            Ok(tokens) => {
                self.replied = true;
                UsageFact::Reported(Usage::default()).publish(host);
                let body = count_tokens::answer(tokens);
                host.send_response(200, &[("content-type", "application/json")], &body);
                Flow::Pause
            }
            Err(error) => self.reply(host, &error),
        }
    }

    #[cfg(not(feature = "anthropic"))]
    pub(super) fn count_tokens_locally(&mut self, _host: &mut dyn Host, _size: usize) -> Flow {
        Flow::Continue // not reached: the Messages dialect is not in this build
    }

    pub(super) fn reply(&mut self, host: &mut dyn Host, error: &ApiError) -> Flow {
        self.replied = true;
        self.telemetry.replied();
        host::send_error_in(host, self.api, error);
        Flow::Pause
    }

    /// Must this try read (and perhaps rewrite) the request body? Not when the translator
    /// sends it as it came: no field policy, no forced usage, and the model the provider is
    /// asked for is the one the body names. `requested` is router's
    /// [`RouterFacts::requested_model`], the body's `model` as sent (every try re-sends the
    /// client's body); without router, the body is read and compared.
    pub(super) fn needs_body(&self, translator: &dyn Translator, requested: Option<&str>) -> bool {
        if self.force_usage {
            return true; // `stream_options.include_usage` is added to the body.
        }
        let upstream = self.upstream_model.as_deref();
        let model_change = match (upstream, requested) {
            (Some(upstream), Some(requested)) if upstream == requested => None,
            (upstream, _) => upstream,
        };
        translator.needs_request_body(model_change)
    }

    /// The configured provider this try goes to, else the name it was given (empty: none).
    pub(super) fn resolve_provider(
        &self,
        host: &dyn Host,
        routed: Option<&str>,
    ) -> Result<usize, String> {
        let by_name = |name: &str| {
            self.providers
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| name.to_string())
        };
        if let Some(bytes) = host.property(&PROVIDER_METADATA) {
            let name = String::from_utf8_lossy(&bytes);
            let name = name.trim().trim_matches('"').trim();
            if !name.is_empty() {
                // The endpoint's metadata is authoritative: never fall back to a header when
                // it names a provider translate does not know.
                return by_name(name);
            }
        }
        if let Some(name) = routed {
            return by_name(name.trim());
        }
        match &*self.providers {
            [_only] => Ok(0),
            _ => Err(String::new()),
        }
    }
}

/// The 500 of a try whose provider (`name`, from the endpoint or router) translate was not
/// given. Named after a schema of a family this build lacks (the providers of `make run` and
/// the examples are), the provider most likely speaks it: the answer says which module to load
/// (a config that names the schema is refused, so it cannot be configured here).
pub(super) fn unknown_provider(name: &str) -> ApiError {
    // (Not even looked up in the full build, which lacks nothing.)
    let schema = Schema::from_name(name).filter(|_| LACKS_A_FAMILY);
    if let Some(why) = schema.and_then(not_built) {
        return not_built_error(name, &why);
    }
    ApiError::new(
        500,
        ErrorType::ApiError,
        "llmgw translate: no provider configured for this upstream",
    )
}

/// The 500 of a try whose key header is empty: the filter that fills it (credential_injector,
/// README "Provider keys that rotate") is missing before translate. It names the header, which
/// is configuration, never a key.
pub(super) fn key_header_missing(header: &str) -> ApiError {
    ApiError::new(
        500,
        ErrorType::ApiError,
        format!(
            "llmgw translate: the provider's key header `{header}` is empty; the gateway's \
             operator must put credential_injector before translate"
        ),
    )
    .with_code("provider_credentials_unavailable")
}

/// The 500 of a Bedrock try whose key header is not `<access key id>:<secret access
/// key>[:<session token>]`. Names the header, never its value.
pub(super) fn key_header_malformed(header: &str) -> ApiError {
    ApiError::new(
        500,
        ErrorType::ApiError,
        format!(
            "llmgw translate: the provider's key header `{header}` is not \
             `<access key id>:<secret access key>[:<session token>]`; the gateway's operator \
             must fix the secret"
        ),
    )
    .with_code("provider_credentials_unavailable")
}

impl HttpFilter for TranslateFilter {
    fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        let providers = Rc::clone(&self.providers);
        // One copy of every request header: everything below reads from it, and removes only
        // headers it shows, instead of one host call per header asked for or removed.
        let all = host.request_headers();
        // The client's path as the first try saw it (a retry shares its rewritten headers).
        let first = FirstTry::load_or_save(host, &all);
        self.api = ClientApi::for_errors(&first.path);
        let router = facts::stored(host, facts::ROUTER);
        let routed = RouterFacts::view(router.as_deref());
        let resolved = self.resolve_provider(host, routed.provider);
        let Some((index, provider)) = resolved
            .as_ref()
            .ok()
            .and_then(|&i| providers.get(i).map(|p| (i, p)))
        else {
            let name = resolved.err().unwrap_or_default();
            return self.reply(host, &unknown_provider(&name));
        };
        self.provider = Some(index);
        // A fallback chain names the model per provider; this try's provider picks its own.
        self.upstream_model = routed.model_for(&provider.name).map(str::to_string);
        self.telemetry = TryTelemetry::start(
            host,
            self.metrics_config,
            first.is_retry,
            routed.price_for(&provider.name),
            &provider.name,
            self.upstream_model.as_deref(),
        );
        // Only ratelimit forces usage, and only on a Chat stream whose client did not ask for
        // it (Messages and Responses always report it).
        self.force_usage = self.api == ClientApi::ChatCompletions
            && routed.stream_without_usage()
            && RateLimitFacts::read_or_default(host).force_usage;

        // This try's key: fixed at configure time, or what Envoy put in the key header for this
        // try (credential_injector from an SDS secret: a rotated key counts from the next try).
        let key = match &provider.key_header {
            None => provider.key.expose(),
            Some(name) => match headers::find(&all, name).map(str::trim) {
                Some(key) if !key.is_empty() => key,
                _ => return self.reply(host, &key_header_missing(name)),
            },
        };
        // Bedrock signs in the body callback, with the credentials of this try.
        let with_credentials;
        let provider = match (&provider.backend, &provider.key_header) {
            (Backend::Bedrock(_), Some(name)) => match provider.with_aws_credentials(key) {
                Some(p) => {
                    with_credentials = p;
                    &with_credentials
                }
                None => return self.reply(host, &key_header_malformed(name)),
            },
            _ => provider,
        };
        // Nothing of llmgw's and none of the client's credentials leave for the provider.
        let mut removed: Vec<&str> = Vec::new();
        for (name, _) in all.iter() {
            let drop = facts::is_reserved_header(name)
                || CLIENT_CREDENTIALS
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(name));
            // A header listed twice (two values) is removed once.
            if drop && !removed.contains(&name) {
                host.remove_request_header(name);
                removed.push(name);
            }
        }
        match &provider.backend {
            Backend::OpenAi { .. } => {
                if provider.options.auth == options::Auth::Key {
                    host.set_request_header(
                        "authorization",
                        &crate::text::concat(&["Bearer ", key]),
                    );
                }
            }
            Backend::Azure(_) => {
                // <https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference#authentication>
                host.set_request_header("api-key", key);
            }
            Backend::Gemini => {
                // <https://ai.google.dev/gemini-api/docs/api-key>
                host.set_request_header("x-goog-api-key", key);
            }
            Backend::Vertex(_) => {
                // An OAuth 2 access token (`gcloud auth print-access-token`, or a workload
                // identity refresher writing the env var), <https://cloud.google.com/vertex-ai/docs/authentication>.
                host.set_request_header("authorization", &crate::text::concat(&["Bearer ", key]));
            }
            Backend::Anthropic { version, .. } => {
                // <https://docs.anthropic.com/en/api/overview#authentication>
                host.set_request_header("x-api-key", key);
                // A Messages client's own `anthropic-version` is what its body is written for.
                let own = self.api == ClientApi::Messages
                    && headers::find(&all, "anthropic-version").is_some_and(|v| !v.is_empty());
                if !own {
                    host.set_request_header("anthropic-version", version);
                }
                // Only the beta flags this provider accepts: one it does not know would fail
                // the whole request.
                if let Some(betas) = headers::find(&all, "anthropic-beta") {
                    match provider.options.accepted_betas(betas) {
                        Some(kept) if kept == betas => {}
                        Some(kept) => host.set_request_header("anthropic-beta", &kept),
                        None => host.remove_request_header("anthropic-beta"),
                    }
                }
            }
            // Signed in the body callback: the signature covers the final body.
            Backend::Bedrock(_) => {}
        }

        if !matches!(provider.backend, Backend::Anthropic { .. }) {
            // Anthropic's headers mean nothing to another backend.
            for name in ["anthropic-version", "anthropic-beta"] {
                if headers::find(&all, name).is_some() {
                    host.remove_request_header(name);
                }
            }
        }

        let path = first.path;
        let (path_only, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path.as_str(), None),
        };
        let is_post =
            headers::find(&all, ":method").is_some_and(|m| m.eq_ignore_ascii_case("POST"));
        let counts_locally = is_post
            && cfg!(feature = "anthropic")
            && ClientApi::from_path(path_only)
                == Some((ClientApi::Messages, Operation::CountTokens))
            && !matches!(provider.backend, Backend::Anthropic { .. });
        if counts_locally {
            // No such endpoint there: translate answers with an estimate (`count_tokens`).
            if end_of_stream {
                let error = ApiError::invalid_request("a count_tokens request needs a JSON body");
                return self.reply(host, &error);
            }
            self.count_tokens = true;
            return Flow::Pause;
        }
        let translator = match (is_post, ClientApi::from_path(path_only)) {
            (true, Some((ClientApi::ChatCompletions, _))) => provider
                .translator(self.upstream_model.as_deref())
                .map(Some),
            (true, Some((ClientApi::Messages, operation))) => provider
                .messages_translator(operation, self.upstream_model.as_deref())
                .map(Some),
            (true, Some((ClientApi::Responses, _))) => provider
                .responses_translator(self.upstream_model.as_deref())
                .map(Some),
            (true, None) if path_only == EMBEDDINGS => {
                provider.embeddings_translator(self.upstream_model.as_deref())
            }
            _ => Ok(None),
        };
        let translator = match translator {
            Ok(translator) => translator,
            Err(error) => return self.reply(host, &error),
        };
        if let Some(translator) = translator {
            if end_of_stream {
                return self.reply(
                    host,
                    &ApiError::invalid_request(format!(
                        "a `{path_only}` request needs a JSON body"
                    )),
                );
            }
            host.set_request_header(":path", &translator.chat_path(query));
            // A compressed answer could be neither translated nor watched for its end.
            if headers::find(&all, "accept-encoding").is_some() {
                host.remove_request_header("accept-encoding");
            }
            if !self.needs_body(&*translator, routed.requested_model) {
                // Passthrough: the body leaves as the client sent it, so it is neither
                // buffered nor copied into the VM, and its content-length stays right.
                self.translator = Some(translator);
                return Flow::Continue;
            }
            // The body is rewritten and its length set once it is known (`on_request_body`
            // always sets it or answers): the headers wait for the body, so the old length
            // never leaves and needs no removal now.
            self.translator = Some(translator);
            self.chat = true;
            // Wait for the body; Envoy's `allow_on_headers_stop_iteration` lets the header
            // changes made in the body callback still reach the provider.
            return Flow::Pause;
        }
        match &provider.backend {
            Backend::OpenAi { base_path } => {
                // Other OpenAI endpoints (models, embeddings, …) pass through unread.
                if let Some(rest) = path.strip_prefix("/v1") {
                    if rest.is_empty() || rest.starts_with(['/', '?']) {
                        let new_path = format!("{base_path}{rest}");
                        host.set_request_header(":path", &new_path);
                    }
                }
                Flow::Continue
            }
            Backend::Anthropic { .. }
            | Backend::Azure(_)
            | Backend::Gemini
            | Backend::Vertex(_)
            | Backend::Bedrock(_) => {
                let error = ApiError::new(
                    404,
                    ErrorType::NotFoundError,
                    format!(
                        "`{path_only}` is not supported by provider {}",
                        provider.name
                    ),
                );
                self.reply(host, &error)
            }
        }
    }

    fn on_request_trailers(&mut self, host: &mut dyn Host) -> Flow {
        if !self.chat || self.replied {
            return Flow::Continue;
        }
        crate::filter::end_of_body_on_trailers(self, host)
    }

    fn on_request_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        if self.count_tokens && !self.replied {
            if !end_of_stream {
                return Flow::Pause;
            }
            return self.count_tokens_locally(host, size);
        }
        if !self.chat || self.replied {
            return Flow::Continue;
        }
        if !end_of_stream {
            return Flow::Pause; // Envoy buffers until the whole body is there.
        }
        let Some(translator) = self.translator.as_mut() else {
            return Flow::Continue;
        };
        let upstream_model = self.upstream_model.as_deref();
        // The client's body with `stream_options.include_usage` set, when forced: every
        // translator then reports usage as if the client had asked.
        let forced = if self.force_usage {
            crate::ratelimit::estimate::force_include_usage(&host.request_body(size))
        } else {
            None
        };
        let result = if let Some(body) = &forced {
            translator
                .request_body(body, upstream_model)
                .map(|out| out.or_else(|| Some(body.clone())))
        } else if translator.needs_request_body(upstream_model) {
            let body = host.request_body(size);
            translator.request_body(&body, upstream_model)
        } else {
            Ok(None)
        };
        if result.is_ok() {
            if let Some(path) = translator.request_path() {
                host.set_request_header(":path", &path);
            }
            if forced.is_some() {
                // The client did not ask for the usage chunk: translate drops it (its usage
                // still reaches ratelimit, through `facts::USAGE`).
                translator.hide_usage_chunk();
            }
        }
        match result {
            Ok(Some(new_body)) => {
                host.set_request_body(size, &new_body);
                host.set_request_header("content-length", &new_body.len().to_string());
                for (name, value) in translator.finish_request(&new_body, host.now_ms()) {
                    host.set_request_header(&name, &value);
                }
                Flow::Continue
            }
            Ok(None) => {
                host.set_request_header("content-length", &size.to_string());
                Flow::Continue
            }
            Err(error) => self.reply(host, &error),
        }
    }

    fn on_response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        let flow = self.response_headers(host, end_of_stream);
        if end_of_stream {
            self.response_ended(host);
        }
        flow
    }

    fn on_response_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        let flow = self.response_body(host, size, end_of_stream);
        if end_of_stream {
            self.response_ended(host);
        }
        flow
    }

    fn on_stream_done(&mut self, host: &mut dyn Host) {
        let Some(provider) = self.provider.and_then(|i| self.providers.get(i)) else {
            return;
        };
        let usage = self.translator.as_ref().and_then(|t| t.usage());
        let outcome = telemetry::Outcome {
            usage,
            stream_failed: self.translator.as_ref().is_some_and(|t| t.stream_failed()),
            dropped: self.translator.as_ref().map_or(&[][..], |t| t.dropped()),
        };
        self.telemetry.report(
            host,
            &self.metrics,
            &provider.name,
            self.upstream_model.as_deref(),
            outcome,
        );
    }
}

impl TranslateFilter {
    /// The try's response reached its end: its outcome goes to the access log now, before
    /// Envoy writes the request's line (`on_stream_done` may come after that).
    pub(super) fn response_ended(&mut self, host: &mut dyn Host) {
        if self.provider.is_none() {
            return;
        }
        let usage = self.translator.as_ref().and_then(|t| t.usage());
        let stream_failed = self.translator.as_ref().is_some_and(|t| t.stream_failed());
        self.telemetry.log_outcome(host, usage, stream_failed);
        // For the filters in front, before they see the end of the answer.
        if let Some(usage) = usage {
            UsageFact::Reported(usage).publish(host);
        }
    }

    pub(super) fn response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        // One copy of the response headers serves every read below.
        let all = host.response_headers();
        let status = headers::find(&all, ":status")
            .and_then(|s| s.trim().parse::<u16>().ok())
            .unwrap_or(0);
        self.telemetry.status_changed(status);
        if self.replied {
            return Flow::Continue;
        }
        if let Some(flow) = self.shield_account(host, &all, status) {
            return flow;
        }
        let Some(translator) = self.translator.as_mut() else {
            return Flow::Continue;
        };
        let content_type = headers::find(&all, "content-type");
        let encoded = headers::find(&all, "content-encoding")
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
        for name in translator.response_headers_read() {
            if let Some(value) = headers::find(&all, name) {
                translator.note_response_header(name, value);
            }
        }
        let created = if translator.stamps_created() {
            host.now_ms() / 1000
        } else {
            0
        };
        let plan = translator.response_headers(status, content_type, encoded, created);
        self.mode = plan.mode;
        if (200..300).contains(&status) {
            // From here translate reports this answer's usage: ratelimit need not read it.
            UsageFact::Pending.publish(host);
        }
        if let Some(new_status) = plan.status {
            self.telemetry.status_changed(new_status);
        }
        if matches!(plan.mode, ResponseMode::Untouched | ResponseMode::Watch) {
            return Flow::Continue;
        }
        // A buffered answer's length is set with its body (`response_body`), the headers
        // waiting until then; a stream's is unknown: removed now, if it came with one (a
        // chunked stream has none: no call for it on the way to the first event).
        if plan.mode != ResponseMode::Buffer && headers::find(&all, "content-length").is_some() {
            host.remove_response_header("content-length");
        }
        if let Some(content_type) = plan.content_type {
            host.set_response_header("content-type", content_type);
        }
        if let Some(new_status) = plan.status {
            host.set_response_header(":status", &new_status.to_string());
        }
        match plan.mode {
            ResponseMode::Buffer if end_of_stream => {
                // No body will follow, yet the client must get a readable one.
                let out = translator.response_body(b"");
                let status = out.status.or(plan.status).unwrap_or(status);
                self.telemetry.status_changed(status);
                self.replied = true;
                host.send_response(status, &[("content-type", "application/json")], &out.body);
                Flow::Pause
            }
            // Hold the headers: the status may still change once the body is read.
            ResponseMode::Buffer => Flow::Pause,
            ResponseMode::Stream | ResponseMode::Untouched | ResponseMode::Watch => Flow::Continue,
        }
    }

    /// The provider account is the operator's ([`account_headers`]): a refusal of our
    /// credentials becomes the gateway's 502 (`Some`: answered), and the account's headers
    /// never reach the client; its request id does, renamed.
    pub(super) fn shield_account(
        &mut self,
        host: &mut dyn Host,
        all: &HeaderMap,
        status: u16,
    ) -> Option<Flow> {
        let provider = self.provider()?;
        if account_headers::refused_our_credentials(status) {
            log::warn!(
                "llmgw.translate: provider {provider} refused our credentials (HTTP {status})"
            );
            self.telemetry.status_changed(502);
            return Some(self.reply(host, &account_headers::upstream_auth_failed(status)));
        }
        for (name, _) in all.iter() {
            if account_headers::is_account_header(name) {
                host.remove_response_header(name);
            }
        }
        if let Some(id) = account_headers::provider_request_id(all) {
            host.set_response_header(account_headers::PROVIDER_REQUEST_ID, id);
        }
        None
    }

    pub(super) fn response_body(
        &mut self,
        host: &mut dyn Host,
        size: usize,
        end_of_stream: bool,
    ) -> Flow {
        if self.replied {
            return Flow::Continue;
        }
        let Some(translator) = self.translator.as_mut() else {
            return Flow::Continue;
        };
        self.telemetry.body_received(host);
        match self.mode {
            ResponseMode::Untouched => Flow::Continue,
            ResponseMode::Watch => {
                let chunk = host.response_body(size);
                let _unchanged = translator.response_chunk(&chunk, end_of_stream);
                Flow::Continue
            }
            ResponseMode::Buffer => {
                if !end_of_stream {
                    return Flow::Pause;
                }
                let body = host.response_body(size);
                let out = translator.response_body(&body);
                if let Some(status) = out.status {
                    self.telemetry.status_changed(status);
                    host.set_response_header(":status", &status.to_string());
                }
                host.set_response_header("content-length", &out.body.len().to_string());
                host.set_response_body(size, &out.body);
                Flow::Continue
            }
            ResponseMode::Stream => {
                let chunk = if size == 0 {
                    Vec::new()
                } else {
                    host.response_body(size)
                };
                if let Some(out) = translator.response_chunk(&chunk, end_of_stream) {
                    host.set_response_body(size, &out);
                }
                Flow::Continue
            }
        }
    }
}
