//! Malformed input on every RPC (issue #9): for each method of every work4life service in the
//! descriptor set, requests built from the method's own input descriptor with random values
//! (wrong-looking names, huge numbers, NUL bytes, 5,000-character strings, nested messages),
//! the same mutated (bytes flipped, truncated), and plain random bytes, sent as an admin
//! through real gRPC to the real binary. Nothing may answer INTERNAL or UNKNOWN (a panic), and
//! the process must still serve afterwards. `W4L_FUZZ_PER_METHOD` sets the requests per method
//! (default 24); the count tried is printed for docs/reliability.md.

use std::{collections::HashMap, sync::Arc};

use bytes::{Buf, BufMut};
use prost::Message as _;
use prost_types::{DescriptorProto, FileDescriptorSet, field_descriptor_proto::Type};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tonic::{
    Code, Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};
use work4life_tests::world::{Mode, World};

/// Passes request bytes through untouched, so any byte string can be a request.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, number: i32, wire: u64) {
    varint(out, ((number as u64) << 3) | wire);
}

/// Text a client might send by mistake or on purpose.
fn text(rng: &mut StdRng) -> String {
    let id = uuid::Uuid::now_v7();
    match rng.gen_range(0..12) {
        0 => String::new(),
        1 => "x".repeat(5_000),
        2 => "a\0b".into(),
        3 => format!("applicants/{id}"),
        4 => format!("applications/{id}/../{id}"),
        5 => "مرحبا 👋 ☃".into(),
        6 => "-1".into(),
        7 => "99999999999999999999".into(),
        8 => "'; DROP TABLE outbox; --".into(),
        9 => id.to_string(),
        10 => "2027-02-30".into(),
        _ => (0..rng.gen_range(1..40)).map(|_| rng.gen_range(' '..='~')).collect(),
    }
}

/// A message of type `desc` with random values for random fields, encoded.
fn random_message(desc: &DescriptorProto, types: &HashMap<String, DescriptorProto>, rng: &mut StdRng, depth: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for field in &desc.field {
        if !rng.gen_bool(0.6) {
            continue;
        }
        let repeats = if field.label() == prost_types::field_descriptor_proto::Label::Repeated { rng.gen_range(0..4) } else { 1 };
        for _ in 0..repeats {
            match field.r#type() {
                Type::String => {
                    let s = text(rng);
                    key(&mut out, field.number(), 2);
                    varint(&mut out, s.len() as u64);
                    out.extend_from_slice(s.as_bytes());
                }
                Type::Bytes => {
                    let b: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.r#gen()).collect();
                    key(&mut out, field.number(), 2);
                    varint(&mut out, b.len() as u64);
                    out.extend_from_slice(&b);
                }
                Type::Message => {
                    let nested = match types.get(field.type_name()) {
                        Some(d) if depth < 3 => random_message(d, types, rng, depth + 1),
                        _ => Vec::new(),
                    };
                    key(&mut out, field.number(), 2);
                    varint(&mut out, nested.len() as u64);
                    out.extend_from_slice(&nested);
                }
                Type::Double | Type::Fixed64 | Type::Sfixed64 => {
                    key(&mut out, field.number(), 1);
                    let v: u64 = if rng.gen_bool(0.5) { f64::NAN.to_bits() } else { rng.r#gen() };
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Type::Float | Type::Fixed32 | Type::Sfixed32 => {
                    key(&mut out, field.number(), 5);
                    out.extend_from_slice(&rng.r#gen::<u32>().to_le_bytes());
                }
                _ => {
                    // Varints: ints, enums (unknown numbers too), bools; negatives take ten bytes.
                    key(&mut out, field.number(), 0);
                    let v: u64 = match rng.gen_range(0..5) {
                        0 => 0,
                        1 => u64::MAX,
                        2 => (-1i64) as u64,
                        3 => rng.gen_range(0..10),
                        _ => rng.r#gen(),
                    };
                    varint(&mut out, v);
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn no_rpc_answers_internal_or_panics_on_malformed_requests() {
    let world = World::start(Mode::AllInOne).await.expect("world");
    let (_, admin) = world.token("admin", None, &[]);
    let set = FileDescriptorSet::decode(work4life_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let mut types = HashMap::new();
    let mut methods = Vec::new();
    for file in &set.file {
        for message in &file.message_type {
            types.insert(format!(".{}.{}", file.package(), message.name()), message.clone());
            for nested in &message.nested_type {
                types.insert(format!(".{}.{}.{}", file.package(), message.name(), nested.name()), nested.clone());
            }
        }
        if !file.package().starts_with("work4life.") || file.package() == "work4life.testing.v1" {
            continue;
        }
        for service in &file.service {
            for method in &service.method {
                methods.push((format!("/{}.{}/{}", file.package(), service.name(), method.name()), method.input_type().to_string()));
            }
        }
    }
    assert!(methods.len() >= 100, "{} methods", methods.len());
    let per_method: usize = std::env::var("W4L_FUZZ_PER_METHOD").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let seed: u64 = std::env::var("W4L_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    let types = Arc::new(types);
    let mut tried = 0usize;
    let mut codes: HashMap<Code, usize> = HashMap::new();
    let mut failures = Vec::new();
    for (i, (path, input)) in methods.iter().enumerate() {
        let service = path.trim_start_matches("/work4life.").split('.').next().unwrap_or_default().to_string();
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
        let desc = types.get(input).cloned().unwrap_or_else(|| panic!("descriptor of {input}"));
        let mut grpc = tonic::client::Grpc::new(world.channel(&service));
        for n in 0..per_method {
            let mut body = random_message(&desc, &types, &mut rng, 0);
            match n % 6 {
                4 if !body.is_empty() => {
                    // Mutated: a few bytes flipped, maybe truncated.
                    for _ in 0..rng.gen_range(1..4) {
                        let at = rng.gen_range(0..body.len());
                        body[at] ^= rng.r#gen::<u8>() | 1;
                    }
                    if rng.gen_bool(0.5) {
                        body.truncate(rng.gen_range(0..body.len()));
                    }
                }
                5 => body = (0..rng.gen_range(0..200)).map(|_| rng.r#gen()).collect(),
                _ => {}
            }
            let mut request = Request::new(body.clone());
            request.metadata_mut().insert("authorization", format!("Bearer {admin}").parse().expect("header"));
            request.set_timeout(std::time::Duration::from_secs(10));
            grpc.ready().await.expect("ready");
            let answer = grpc.unary(request, path.parse().expect("path"), Raw).await;
            tried += 1;
            let code = match &answer {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            };
            *codes.entry(code).or_default() += 1;
            if matches!(code, Code::Internal | Code::Unknown | Code::DataLoss) {
                let message = answer.err().map(|s| s.message().to_string()).unwrap_or_default();
                failures.push(format!("{path} #{n} ({} bytes, seed {seed}): {code:?} {message}", body.len()));
            }
        }
    }
    // Still serving: a plain call answers.
    let mut health = tonic_health::pb::health_client::HealthClient::new(world.channel("identity"));
    let alive = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect("health").into_inner();
    assert_eq!(alive.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let mut by_code: Vec<_> = codes.iter().map(|(c, n)| format!("{c:?}={n}")).collect();
    by_code.sort();
    println!("fuzz: {tried} requests over {} methods (seed {seed}): {}", methods.len(), by_code.join(", "));
    world.stop().await.expect("clean stop");
    assert!(failures.is_empty(), "{} of {tried} requests answered INTERNAL/UNKNOWN:\n{}", failures.len(), failures.join("\n"));
}

/// One raw HTTP/2 gRPC request with `body` as its bytes (frame headers included) and
/// `content_type`; returns the `grpc-status` from the headers or trailers.
async fn raw_call(addr: &str, path: &str, token: &str, content_type: &str, body: Vec<u8>) -> (Option<i32>, String) {
    use http_body_util::BodyExt as _;
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("h2");
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("request");
    let response = sender.send_request(request).await.expect("an HTTP answer");
    let read = |h: &http::HeaderMap| {
        let code = h.get("grpc-status").and_then(|v| v.to_str().ok()?.parse().ok());
        (code, h.get("grpc-message").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string())
    };
    let from_headers = read(response.headers());
    if from_headers.0.is_some() {
        return from_headers;
    }
    match response.into_body().collect().await.ok().and_then(|c| c.trailers().cloned()) {
        Some(trailers) => read(&trailers),
        None => (None, String::new()),
    }
}

fn frame(flag: u8, declared: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&declared.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn malformed_grpc_frames_are_refused_without_internal() {
    let world = World::start(Mode::AllInOne).await.expect("world");
    let (_, admin) = world.token("admin", None, &[]);
    let addr = world.suite.url_of("intake").trim_start_matches("http://").to_string();
    let path = "/work4life.intake.v1.IntakeService/GetApplicant";
    let valid =
        work4life_proto::intake::GetApplicantRequest { name: format!("applicants/{}", uuid::Uuid::now_v7()), view: 0 }.encode_to_vec();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("a well-formed request (control)", "application/grpc", frame(0, valid.len() as u32, &valid)),
        ("no frame at all", "application/grpc", vec![]),
        ("a frame header cut short", "application/grpc", vec![0, 0, 0]),
        ("a length beyond the body", "application/grpc", frame(0, 1_000, &valid)),
        ("a 4 GiB length", "application/grpc", frame(0, u32::MAX, &valid)),
        ("compressed without grpc-encoding", "application/grpc", frame(1, valid.len() as u32, &valid)),
        ("an unknown compression flag", "application/grpc", frame(7, valid.len() as u32, &valid)),
        (
            "two messages in a unary call",
            "application/grpc",
            [frame(0, valid.len() as u32, &valid), frame(0, valid.len() as u32, &valid)].concat(),
        ),
        ("garbage inside a good frame", "application/grpc", frame(0, 4, &[0xff, 0xff, 0xff, 0xff])),
        ("not gRPC at all", "application/json", b"{\"name\":\"applicants/1\"}".to_vec()),
    ];
    let mut answers = Vec::new();
    for (what, content_type, body) in cases {
        let (code, message) = raw_call(&addr, path, &admin, content_type, body).await;
        answers.push((what, code, message));
    }
    println!("frames: {answers:?}");
    assert_eq!(answers[0].1, Some(Code::NotFound as i32), "the control request reaches the handler");
    for (what, code, message) in &answers[1..] {
        assert!(
            !matches!(code.map(Code::from_i32), Some(Code::Internal | Code::Unknown | Code::Ok)),
            "{what}: answered {code:?} {message}"
        );
    }
    let mut health = tonic_health::pb::health_client::HealthClient::new(world.channel("intake"));
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect("still serving");
    world.stop().await.expect("clean stop");
}
