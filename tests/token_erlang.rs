//! `phx_channels::token` against a real Erlang runtime: Erlang mints tokens the way
//! Plug.Crypto does (PBKDF2 key, `term_to_binary` of `{data, signed_at, max_age}`,
//! HMAC-SHA256, unpadded URL-safe base64) and this crate verifies them; this crate signs
//! and Erlang checks the signature and decodes the term with `binary_to_term`.
//!
//! The Erlang code is written here from the algorithm, with only OTP's `crypto` and
//! `base64`. It needs `erl` on the PATH (Debian: `erlang-base` and `erlang-crypto`).
//! Without it the tests say they were skipped, unless `PHX_REQUIRE_ERLANG=1`, which
//! `scripts/test.sh` sets: then a missing `erl` fails them.

use phx_channels::token::{MaxAge, TokenError, TokenKey};
use serde_json::{Map, Value, json};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "w9Xq2mJ7vR4tLs8kYp3nZc6bHf1gDa5eQu0iOy7xTr2wVm9KjNs4LpBh6CgFd3Ea";
const SALT: &str = "user socket";

/// How the same data looks on the two sides.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// JSON and Erlang term map one to one, and our token equals the one Erlang mints
    /// with `{minor_version, 2}` (UTF-8 atoms, OTP 26's default) byte for byte.
    Exact,
    /// One to one, but Erlang writes the map in its own hash order (more than 32 keys):
    /// the bytes differ, the terms do not.
    SameTerm,
    /// Only Erlang to JSON: atoms become strings.
    FromErlang,
}

struct Case {
    name: &'static str,
    /// An Erlang expression for the data.
    erlang: &'static str,
    json: Value,
    kind: Kind,
}

fn case(name: &'static str, erlang: &'static str, json: Value, kind: Kind) -> Case {
    Case { name, erlang, json, kind }
}

fn cases() -> Vec<Case> {
    use Kind::*;
    let mut deep = json!([]);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let wide: Map<String, Value> = (1..=40).map(|i| (i.to_string(), json!(i))).collect();
    let long: Vec<Value> = (1..=70_000).map(|i| json!(i % 256)).collect();
    let bytes: Vec<Value> = (0..=255).map(|i| json!(i)).collect();
    let mut cases = vec![
        case("string", r#"<<"user:42">>"#, json!("user:42"), Exact),
        case("empty_string", "<<>>", json!(""), Exact),
        case("utf8_string", r#"<<"caf", 195, 169, " ", 226, 156, 147>>"#, json!("café ✓"), Exact),
        case("zero", "0", json!(0), Exact),
        case("small_int", "255", json!(255), Exact),
        case("int", "256", json!(256), Exact),
        case("negative_int", "-1", json!(-1), Exact),
        case("i32_min", "-2147483648", json!(-2147483648i64), Exact),
        case("i32_max", "2147483647", json!(2147483647), Exact),
        case("above_2_31", "2147483648", json!(2147483648u64), Exact),
        case("big_int", "3000000000", json!(3000000000u64), Exact),
        case("big_negative_int", "-3000000000", json!(-3000000000i64), Exact),
        case("i64_max", "9223372036854775807", json!(i64::MAX), Exact),
        case("i64_min", "-9223372036854775808", json!(i64::MIN), Exact),
        case("u64_max", "18446744073709551615", json!(u64::MAX), Exact),
        case("float", "3.25", json!(3.25), Exact),
        case("negative_float", "-0.5", json!(-0.5), Exact),
        case("whole_float", "1.0", json!(1.0), Exact),
        case("huge_float", "1.0e100", json!(1.0e100), Exact),
        case("tiny_float", "5.0e-324", json!(5.0e-324), Exact),
        case("true", "true", json!(true), Exact),
        case("false", "false", json!(false), Exact),
        case("nil", "nil", json!(null), Exact),
        case("empty_list", "[]", json!([]), Exact),
        case("list", r#"[1, <<"two">>, 3.5, true, nil, [], #{}]"#, json!([1, "two", 3.5, true, null, [], {}]), Exact),
        case("small_int_list", "[1, 2, 3]", json!([1, 2, 3]), Exact),
        case("byte_list", "lists:seq(0, 255)", Value::Array(bytes), Exact),
        case("long_list", "[I rem 256 || I <- lists:seq(1, 70000)]", Value::Array(long), Exact),
        case("deep_list", "lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 100))", deep, Exact),
        case("empty_map", "#{}", json!({}), Exact),
        case(
            "nested_map",
            r#"#{<<"user_id">> => 42, <<"roles">> => [<<"admin">>, <<"dev">>],
                 <<"profile">> => #{<<"name">> => <<"Ada">>, <<"age">> => nil, <<"scores">> => [1.5, -2]}}"#,
            json!({"user_id": 42, "roles": ["admin", "dev"],
                   "profile": {"name": "Ada", "age": null, "scores": [1.5, -2]}}),
            Exact,
        ),
        case(
            "wide_map",
            "maps:from_list([{integer_to_binary(I), I} || I <- lists:seq(1, 40)])",
            Value::Object(wide),
            SameTerm,
        ),
        case("atom_keys", r#"#{user_id => 5, name => <<"x">>}"#, json!({"user_id": 5, "name": "x"}), FromErlang),
        case("atom", "admin", json!("admin"), FromErlang),
    ];
    // Bignums: JSON numbers keep them exactly with `exact-numbers` (the default).
    if cfg!(feature = "exact-numbers") {
        let number = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        cases.extend([
            case("bignum", "1 bsl 64", number("18446744073709551616"), Exact),
            case(
                "negative_bignum",
                "-123456789012345678901234567890",
                number("-123456789012345678901234567890"),
                Exact,
            ),
            // 256 digits of base 256, past SMALL_BIG_EXT: LARGE_BIG_EXT.
            case("large_bignum", "-(1 bsl 2048) + 1", number(&format!("-{}", two_to_the_2048_less_one())), Exact),
            case(
                "bignum_list",
                "[1 bsl 70, -(1 bsl 70)]",
                number("[1180591620717411303424,-1180591620717411303424]"),
                Exact,
            ),
        ]);
    }
    cases
}

/// 2^2048 - 1 in decimal, worked out here by doubling a decimal string.
fn two_to_the_2048_less_one() -> String {
    let mut digits = vec![1u8]; // least significant first
    for _ in 0..2048 {
        let mut carry = 0;
        for d in &mut digits {
            let twice = *d * 2 + carry;
            *d = twice % 10;
            carry = twice / 10;
        }
        if carry > 0 {
            digits.push(carry);
        }
    }
    digits[0] -= 1; // 2^n ends in 2, 4, 6 or 8: no borrow
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

/// The Erlang definitions every program starts with: the secret, URL-safe base64
/// without padding both ways, the key for a salt, and a signer for a message.
fn prelude(now_ms: u64) -> String {
    let cases: Vec<String> = cases().iter().map(|c| format!("{{\"{}\", {}}}", c.name, c.erlang)).collect();
    format!(
        r#"
        Secret = <<"{SECRET}">>,
        Salt = <<"{SALT}">>,
        Now = {now_ms},
        B64 = fun(Bin) ->
            << <<(case C of $+ -> $-; $/ -> $_; _ -> C end)>> || <<C>> <= base64:encode(Bin), C =/= $= >>
        end,
        UnB64 = fun(Text) ->
            Std = << <<(case C of $- -> $+; $_ -> $/; _ -> C end)>> || <<C>> <= Text >>,
            base64:decode(<<Std/binary, (binary:copy(<<"=">>, (4 - byte_size(Std) rem 4) rem 4))/binary>>)
        end,
        KeyFor = fun(S) -> crypto:pbkdf2_hmac(sha256, Secret, S, 1000, 32) end,
        Sign = fun(Digest, Header, S, Message) ->
            Input = <<Header/binary, ".", (B64(Message))/binary>>,
            <<Input/binary, ".", (B64(crypto:mac(hmac, Digest, KeyFor(S), Input)))/binary>>
        end,
        Cases = [{}],
        "#,
        cases.join(",\n")
    )
}

/// Runs `program` (Erlang expressions) with `input` on its standard input and returns
/// what it printed, or `None` when `erl` is missing and not required.
fn run_erlang(program: &str, input: &str) -> Option<String> {
    let wrapped = format!(
        "try\n{program}\nok\ncatch Class:Reason:Stack ->\n\
         io:format(standard_error, \"~p:~p~n~p~n\", [Class, Reason, Stack]), halt(1)\nend, halt(0)."
    );
    let spawned = Command::new("erl")
        .args(["-noshell", "-eval", &wrapped])
        .env("ERL_CRASH_DUMP_SECONDS", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var("PHX_REQUIRE_ERLANG").as_deref() == Ok("1") {
                panic!(
                    "erl was not found on the PATH and PHX_REQUIRE_ERLANG=1: install Erlang \
                     (on Debian: apt-get install erlang-base erlang-crypto)"
                );
            }
            eprintln!("\n*** skipped: erl not found on the PATH; these tests need an Erlang runtime ***\n");
            return None;
        }
        Err(e) => panic!("could not start erl: {e}"),
    };
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).map(|_| out)
    });
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut err = String::new();
        stderr.read_to_string(&mut err).map(|_| err)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("erl ran for two minutes; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap().expect("writing erl's input");
    let out = reader.join().unwrap().expect("reading erl's output");
    let err = err_reader.join().unwrap().expect("reading erl's errors");
    assert!(status.success() && err.is_empty(), "erl failed ({status}):\n{err}\n{out}");
    Some(out)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn key() -> TokenKey {
    TokenKey::new(SECRET, SALT)
}

#[test]
fn tokens_erlang_mints_verify_here() {
    let now = now_ms();
    let program = format!(
        r#"{}
        lists:foreach(fun({{Name, Data}}) ->
            Envelope = {{Data, Now, 86400}},
            Default = Sign(sha256, <<"SFMyNTY">>, Salt, term_to_binary(Envelope)),
            Utf8Atoms = Sign(sha256, <<"SFMyNTY">>, Salt, term_to_binary(Envelope, [{{minor_version, 2}}])),
            io:format("~s ~s ~s~n", [Name, Default, Utf8Atoms])
        end, Cases),
        "#,
        prelude(now)
    );
    let Some(out) = run_erlang(&program, "") else { return };
    let key = key();
    let cases = cases();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len(), "one line per case:\n{out}");
    let signed_at = UNIX_EPOCH + Duration::from_millis(now);
    let mut exact = 0;
    for (case, line) in cases.iter().zip(lines) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert_eq!(fields[0], case.name);
        // As the runtime writes terms by default (ATOM_EXT before OTP 26), and with UTF-8
        // atoms; with the max age written in the token, and with one given here.
        for token in &fields[1..] {
            assert_eq!(key.verify(token, None).as_ref(), Ok(&case.json), "{}: {token}", case.name);
            assert_eq!(key.verify(token, Some(MaxAge::Seconds(3600))).as_ref(), Ok(&case.json), "{}", case.name);
        }
        if case.kind == Kind::Exact {
            let ours = key.signer().signed_at(signed_at).sign(&case.json);
            assert_eq!(ours, fields[2], "{}: our token differs from Erlang's", case.name);
            exact += 1;
        }
    }
    assert_eq!(exact, cases.iter().filter(|c| c.kind == Kind::Exact).count());
}

#[test]
fn erlang_only_tokens_get_the_right_answer() {
    let now = now_ms();
    // Each: name, digest, header, salt, message.
    let program = format!(
        r#"{}
        Specials = [
            {{"legacy_pair", sha256, <<"SFMyNTY">>, Salt, term_to_binary({{7, Now}})}},
            {{"legacy_map", sha256, <<"SFMyNTY">>, Salt, term_to_binary(#{{data => 7, signed => Now}})}},
            {{"infinity", sha256, <<"SFMyNTY">>, Salt, term_to_binary({{7, 1000, infinity}})}},
            {{"float_max_age", sha256, <<"SFMyNTY">>, Salt, term_to_binary({{7, Now, 86400.0}})}},
            {{"hs384", sha384, <<"SFMzODQ">>, Salt, term_to_binary({{7, Now, 86400}})}},
            {{"hs512", sha512, <<"SFM1MTI">>, Salt, term_to_binary({{7, Now, 86400}})}},
            {{"expired", sha256, <<"SFMyNTY">>, Salt, term_to_binary({{7, Now - 120000, 60}})}},
            {{"future", sha256, <<"SFMyNTY">>, Salt, term_to_binary({{7, Now + 600000, 86400}})}},
            {{"other_salt", sha256, <<"SFMyNTY">>, <<"other salt">>, term_to_binary({{7, Now, 86400}})}},
            {{"tuple", sha256, <<"SFMyNTY">>, Salt, term_to_binary({{{{user, 7}}, Now, 86400}})}},
            {{"pid", sha256, <<"SFMyNTY">>, Salt, term_to_binary({{self(), Now, 86400}})}},
            {{"bignum", sha256, <<"SFMyNTY">>, Salt, term_to_binary({{1 bsl 64, Now, 86400}})}},
            {{"compressed", sha256, <<"SFMyNTY">>, Salt,
              term_to_binary({{binary:copy(<<"a">>, 1000), Now, 86400}}, [compressed])}}
        ],
        lists:foreach(fun({{Name, Digest, Header, S, Message}}) ->
            io:format("~s ~s~n", [Name, Sign(Digest, Header, S, Message)])
        end, Specials),
        "#,
        prelude(now)
    );
    let Some(out) = run_erlang(&program, "") else { return };
    let key = key();
    let bignum = if cfg!(feature = "exact-numbers") {
        Ok(serde_json::from_str("18446744073709551616").unwrap())
    } else {
        Err(TokenError::Unsupported(
            "an integer beyond 64 bits, which the `exact-numbers` feature (on by default) keeps exactly",
        ))
    };
    let expected: [(&str, Result<Value, TokenError>); 13] = [
        ("legacy_pair", Ok(json!(7))),
        ("legacy_map", Ok(json!(7))),
        ("infinity", Ok(json!(7))),
        ("float_max_age", Ok(json!(7))),
        ("hs384", Ok(json!(7))),
        ("hs512", Ok(json!(7))),
        ("expired", Err(TokenError::Expired)),
        ("future", Err(TokenError::Invalid)),
        ("other_salt", Err(TokenError::Invalid)),
        ("tuple", Err(TokenError::Unsupported("a tuple"))),
        ("pid", Err(TokenError::Unsupported("a pid, port or reference"))),
        ("bignum", bignum),
        ("compressed", Err(TokenError::Unsupported("a compressed term"))),
    ];
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{out}");
    for ((name, want), line) in expected.into_iter().zip(lines) {
        let (got_name, token) = line.split_once(' ').unwrap();
        assert_eq!(got_name, name);
        assert_eq!(key.verify(token, None), want, "{name}: {token}");
    }
}

#[test]
fn tokens_signed_here_verify_in_erlang() {
    let now = now_ms();
    let signed_at = UNIX_EPOCH + Duration::from_millis(now);
    let key = key();
    let cases = cases();
    let mut input = String::new();
    let mut checked = 0;
    for case in cases.iter().filter(|c| c.kind != Kind::FromErlang) {
        for (max_age, text) in [(MaxAge::default(), "86400"), (MaxAge::Infinity, "infinity")] {
            let token = key.signer().signed_at(signed_at).max_age(max_age).sign(&case.json);
            input.push_str(&format!("{} {text} {token}\n", case.name));
            checked += 1;
        }
    }
    // Erlang checks the signature, that the whole message is one term, and that the
    // term is exactly `{Data, Now, MaxAge}` with the case's data (`=:=`: 1 and 1.0
    // differ).
    let program = format!(
        r#"{}
        Key = KeyFor(Salt),
        Expected = maps:from_list(Cases),
        Check = fun(Line) ->
            [Name, MaxAgeText, Token] = string:split(Line, " ", all),
            [Header, Payload, Signature] = binary:split(list_to_binary(Token), <<".">>, [global]),
            Mac = crypto:mac(hmac, sha256, Key, <<Header/binary, ".", Payload/binary>>),
            Message = UnB64(Payload),
            {{{{Data, Signed, MaxAge}}, Used}} = binary_to_term(Message, [used]),
            MaxAgeWant = case MaxAgeText of "infinity" -> infinity; _ -> list_to_integer(MaxAgeText) end,
            Checks = {{Header =:= <<"SFMyNTY">>, Mac =:= UnB64(Signature), Used =:= byte_size(Message),
                      Signed =:= Now, MaxAge =:= MaxAgeWant, Data =:= maps:get(Name, Expected)}},
            case Checks of
                {{true, true, true, true, true, true}} -> io:format("ok ~s~n", [Name]);
                _ -> io:format("mismatch ~s ~p~n", [Name, Checks])
            end
        end,
        ReadLines = fun Read(Acc) ->
            case io:get_line("") of
                eof -> lists:reverse(Acc);
                L -> Read([string:trim(L) | Acc])
            end
        end,
        lists:foreach(Check, ReadLines([])),
        "#,
        prelude(now)
    );
    let Some(out) = run_erlang(&program, &input) else { return };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), checked, "one line per token:\n{out}");
    for line in lines {
        assert!(line.starts_with("ok "), "Erlang disagrees: {line}");
    }
}
