-- SPDX-License-Identifier: MIT
--
-- rawrpc.lua -- a Wireshark dissector for rawrpc wire protocol v1
-- (docs/PROTOCOL.md), for Wireshark 3.6 and later.
--
--   wireshark -X lua_script:rawrpc.lua capture.pcapng
--   tshark -X lua_script:rawrpc.lua -2 -r capture.pcapng -Y rawrpc
--
-- or copy this file into ~/.local/lib/wireshark/plugins/.
--
-- What it shows: the 12-byte preface, every frame's header, SETTINGS
-- entries by name, the REQUEST and RESPONSE metadata (decoded here, from
-- the field numbers of proto/rawrpc/v1/wire.proto, so Wireshark needs no
-- .proto for them), CANCEL, PING/PONG, GOAWAY, and reserved and extension
-- frames as such.  A REQUEST links to its RESPONSE and back, with the
-- response time.  Frames are reassembled across TCP segments; a segment
-- may hold several.
--
-- Finding the protocol: a heuristic on TCP recognises the preface's magic
-- at the start of a stream, on any port; the "TCP port" preference
-- decodes one port as rawrpc from the middle of a stream too.
--
-- Payloads: with the "Payload message types" preference, e.g.
--   /rawrpc.kv.Kv/Get=rawrpc.kv.GetRequest,rawrpc.kv.GetReply
-- (entries separated by ';' or blanks), a method's request and reply
-- payloads go to Wireshark's protobuf dissector as those message types
-- (it finds them through its "Protobuf search paths" preference); other
-- payloads are shown as bytes.
--
-- A REQUEST's "Response in" is known once its RESPONSE has been seen:
-- Wireshark shows it; tshark needs two passes (-2).

local rawrpc = Proto("rawrpc", "rawrpc RPC protocol")

local MAGIC = "\137RRPC\r\n\26"
local PREFACE_SIZE = 12
local HEADER_SIZE = 12

-- ------------------------------------------------------------- numbers

local T_SETTINGS, T_REQUEST, T_RESPONSE, T_CANCEL = 1, 2, 3, 4
local T_PING, T_PONG, T_GOAWAY = 5, 6, 7

local TYPE_NAMES = {
    [T_SETTINGS] = "SETTINGS",
    [T_REQUEST] = "REQUEST",
    [T_RESPONSE] = "RESPONSE",
    [T_CANCEL] = "CANCEL",
    [T_PING] = "PING",
    [T_PONG] = "PONG",
    [T_GOAWAY] = "GOAWAY",
}

local function type_name(t)
    if TYPE_NAMES[t] then
        return TYPE_NAMES[t]
    elseif t >= 0x80 then
        return string.format("EXTENSION(0x%02x)", t)
    elseif t >= 0x08 and t <= 0x0f then
        return string.format("RESERVED_STREAMING(0x%02x)", t)
    end
    return string.format("RESERVED(0x%02x)", t)
end

local SETTING_NAMES = {
    [1] = "MAX_FRAME_SIZE",
    [2] = "MAX_CONCURRENT_CALLS",
    [3] = "HEARTBEAT_INTERVAL_MS",
    [4] = "MAX_METADATA_SIZE",
}

local STATUS_NAMES = {
    [0] = "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
}

local GOAWAY_NAMES = {
    [0] = "NO_ERROR", "PROTOCOL_ERROR", "FRAME_TOO_LARGE", "BAD_PREFACE",
    "UNSUPPORTED_VERSION", "SETTINGS_ERROR", "HANDSHAKE_TIMEOUT",
    "HEARTBEAT_TIMEOUT", "ENHANCE_YOUR_CALM", "INTERNAL_ERROR",
}

-- A status outside 0-16 is received as UNKNOWN (PROTOCOL.md 5.3).
local function status_name(code)
    return STATUS_NAMES[code] or "UNKNOWN"
end

-- An unknown GOAWAY code is treated as PROTOCOL_ERROR (section 10).
local function goaway_name(code)
    return GOAWAY_NAMES[code] or string.format("UNKNOWN_CODE(%d)", code)
end

-- -------------------------------------------------------------- fields

local F = {
    magic = ProtoField.bytes("rawrpc.preface.magic", "Magic"),
    version = ProtoField.uint16("rawrpc.preface.version", "Version"),
    reserved = ProtoField.uint16("rawrpc.preface.reserved", "Reserved",
        base.HEX),

    length = ProtoField.uint32("rawrpc.length", "Length"),
    type = ProtoField.uint8("rawrpc.type", "Type", base.HEX, TYPE_NAMES),
    type_name = ProtoField.string("rawrpc.type_name", "Type name"),
    flags = ProtoField.uint8("rawrpc.flags", "Flags", base.HEX),
    meta_len = ProtoField.uint16("rawrpc.meta_len", "Metadata length"),
    call_id = ProtoField.uint32("rawrpc.call_id", "Call ID"),
    body = ProtoField.bytes("rawrpc.body", "Body"),

    setting = ProtoField.bytes("rawrpc.setting", "Setting"),
    setting_id = ProtoField.uint16("rawrpc.setting.id", "Setting",
        base.DEC, SETTING_NAMES),
    setting_name = ProtoField.string("rawrpc.setting.name", "Setting name"),
    setting_value = ProtoField.uint32("rawrpc.setting.value", "Value"),

    meta = ProtoField.bytes("rawrpc.meta", "Metadata"),
    method = ProtoField.string("rawrpc.method", "Method"),
    timeout_us = ProtoField.uint64("rawrpc.timeout_us", "Timeout (us)"),
    entry = ProtoField.bytes("rawrpc.metadata", "User metadata"),
    entry_key = ProtoField.string("rawrpc.metadata.key", "Key"),
    entry_value = ProtoField.bytes("rawrpc.metadata.value", "Value"),
    status = ProtoField.uint32("rawrpc.status", "Status", base.DEC,
        STATUS_NAMES),
    status_name = ProtoField.string("rawrpc.status_name", "Status name"),
    message = ProtoField.string("rawrpc.message", "Message"),
    unknown_field = ProtoField.bytes("rawrpc.meta.unknown",
        "Unknown metadata field"),
    payload = ProtoField.bytes("rawrpc.payload", "Payload"),
    payload_type = ProtoField.string("rawrpc.payload_type",
        "Payload message type"),

    ping_data = ProtoField.bytes("rawrpc.ping.data", "Opaque data"),

    goaway_last = ProtoField.uint32("rawrpc.goaway.last_call_id",
        "Last call ID"),
    goaway_code = ProtoField.uint32("rawrpc.goaway.code", "Error code",
        base.DEC, GOAWAY_NAMES),
    goaway_code_name = ProtoField.string("rawrpc.goaway.code_name",
        "Error code name"),
    goaway_message = ProtoField.string("rawrpc.goaway.message", "Message"),

    response_in = ProtoField.framenum("rawrpc.response_in", "Response in",
        base.NONE, frametype and frametype.RESPONSE),
    request_in = ProtoField.framenum("rawrpc.request_in", "Request in",
        base.NONE, frametype and frametype.REQUEST),
    time = ProtoField.relative_time("rawrpc.time", "Response time"),
}
rawrpc.fields = F

local E = {
    malformed = ProtoExpert.new("rawrpc.malformed", "Malformed frame",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_meta = ProtoExpert.new("rawrpc.bad_meta",
        "Metadata does not decode", expert.group.MALFORMED,
        expert.severity.ERROR),
    reserved_type = ProtoExpert.new("rawrpc.reserved_type",
        "Reserved frame type: a PROTOCOL_ERROR for a v1 receiver",
        expert.group.PROTOCOL, expert.severity.WARN),
    extension = ProtoExpert.new("rawrpc.extension",
        "Extension frame: skipped by receivers that do not know it",
        expert.group.PROTOCOL, expert.severity.NOTE),
    not_ok = ProtoExpert.new("rawrpc.not_ok", "Call did not succeed",
        expert.group.RESPONSE_CODE, expert.severity.NOTE),
    goaway_error = ProtoExpert.new("rawrpc.goaway_error",
        "GOAWAY with an error code", expert.group.RESPONSE_CODE,
        expert.severity.WARN),
}
rawrpc.experts = E

-- --------------------------------------------------------- preferences

rawrpc.prefs.tcp_port = Pref.uint("TCP port", 0,
    "Decode this TCP port as rawrpc, even from the middle of a stream " ..
    "(0: none; the heuristic finds rawrpc by its preface on any port)")
rawrpc.prefs.desegment = Pref.bool("Reassemble frames across TCP segments",
    true, "Needs TCP's \"Allow subdissector to reassemble TCP streams\"")
rawrpc.prefs.message_types = Pref.string("Payload message types", "",
    "METHOD=REQUEST_TYPE[,REPLY_TYPE] entries separated by ';' or " ..
    "blanks, e.g. /rawrpc.kv.Kv/Get=rawrpc.kv.GetRequest," ..
    "rawrpc.kv.GetReply; payloads of other methods are shown as bytes")

local payload_types = {} -- method -> {request type, reply type}

local function parse_message_types(s)
    local map = {}
    for entry in string.gmatch(s or "", "[^;%s]+") do
        local method, types = string.match(entry, "^(.-)=(.*)$")
        if method and method ~= "" then
            local req, rep = string.match(types, "^([^,]*),?(.*)$")
            map[method] = {
                req ~= "" and req or nil,
                rep ~= "" and rep or nil,
            }
        end
    end
    return map
end

local registered_port = 0

function rawrpc.prefs_changed()
    payload_types = parse_message_types(rawrpc.prefs.message_types)
    local port = rawrpc.prefs.tcp_port
    if port ~= registered_port then
        local tcp_port = DissectorTable.get("tcp.port")
        if registered_port ~= 0 then
            tcp_port:remove(registered_port, rawrpc)
        end
        if port ~= 0 then
            tcp_port:add(port, rawrpc)
        end
        registered_port = port
    end
end

-- ------------------------------------------------- calls and responses

-- One record per (TCP stream, call ID), filled on the first pass over the
-- packets (pinfo.visited false) and only read afterwards.
local calls = {}
local tcp_stream_field = Field.new("tcp.stream")

function rawrpc.init()
    calls = {}
end

local function call_key(pinfo, call_id)
    local stream = tcp_stream_field()
    if stream then
        return tostring(stream.value) .. "/" .. call_id
    end
    -- Not over TCP: the client's and the server's address instead.
    local a = tostring(pinfo.src) .. ":" .. tostring(pinfo.src_port)
    local b = tostring(pinfo.dst) .. ":" .. tostring(pinfo.dst_port)
    if a > b then
        a, b = b, a
    end
    return a .. "-" .. b .. "/" .. call_id
end

local function call_record(pinfo, call_id)
    local key = call_key(pinfo, call_id)
    local rec = calls[key]
    if not rec and not pinfo.visited then
        rec = {}
        calls[key] = rec
    end
    return rec
end

local function nstime_of(seconds)
    local s = math.floor(seconds)
    local ns = math.floor((seconds - s) * 1e9 + 0.5)
    if ns >= 1000000000 then
        s, ns = s + 1, ns - 1000000000
    end
    return NSTime.new(s, ns)
end

-- ------------------------------------------- protobuf, the tiny subset

-- A varint at off (before limit): its value as a UInt64 and the offset
-- after it, or nil when it runs past limit or over 10 bytes.
local function read_varint(tvb, off, limit)
    local value = UInt64(0)
    local shift = 0
    while off < limit and shift < 70 do
        local b = tvb(off, 1):uint()
        off = off + 1
        value = value:bor(UInt64(b % 128):lshift(shift))
        if b < 128 then
            return value, off
        end
        shift = shift + 7
    end
    return nil
end

-- The fields of the message in tvb[off, off + len), in order: each
-- {num, wire type, start, size, value (varint) or data offset and
-- length (length-delimited)}; nil and a reason when it does not decode.
local function pb_fields(tvb, off, len)
    local fields = {}
    local limit = off + len
    while off < limit do
        local start = off
        local key
        key, off = read_varint(tvb, off, limit)
        if not key then
            return nil, "truncated field key"
        end
        key = key:tonumber()
        local num, wt = math.floor(key / 8), key % 8
        local f = { num = num, wt = wt, start = start }
        if num == 0 then
            return nil, "field number 0"
        elseif wt == 0 then
            f.value, off = read_varint(tvb, off, limit)
            if not f.value then
                return nil, "truncated varint"
            end
        elseif wt == 1 or wt == 5 then
            local n = wt == 1 and 8 or 4
            if off + n > limit then
                return nil, "truncated fixed field"
            end
            f.data, f.data_len = off, n
            off = off + n
        elseif wt == 2 then
            local n
            n, off = read_varint(tvb, off, limit)
            if not n or n > UInt64(limit - off) then
                return nil, "truncated length-delimited field"
            end
            f.data, f.data_len = off, n:tonumber()
            off = off + f.data_len
        else
            return nil, "wire type " .. wt .. " (groups are not used)"
        end
        f.size = off - start
        fields[#fields + 1] = f
    end
    return fields
end

local function text_of(tvb, off, len)
    if len == 0 then
        return ""
    end
    return tvb(off, len):string(ENC_UTF_8)
end

local function printable(s)
    return not string.find(s, "[^\32-\126]")
end

-- A MetadataEntry {key = 1, value = 2}.
local function add_entry(tvb, tree, f)
    local item = tree:add(F.entry, tvb(f.start, f.size))
    local sub, why = pb_fields(tvb, f.data, f.data_len)
    if not sub then
        item:add_proto_expert_info(E.bad_meta, "metadata entry: " .. why)
        return
    end
    local key, value = "", ""
    for _, e in ipairs(sub) do
        if e.num == 1 and e.wt == 2 then
            key = text_of(tvb, e.data, e.data_len)
            item:add(F.entry_key, tvb(e.start, e.size), key)
        elseif e.num == 2 and e.wt == 2 then
            local r = tvb(e.start, e.size)
            if e.data_len > 0 then
                r = tvb(e.data, e.data_len)
                value = r:raw()
            end
            local v = item:add(F.entry_value, r, value)
            if e.data_len == 0 then
                v:set_text("Value: (empty)")
            elseif printable(value) then
                v:append_text(" (\"" .. value .. "\")")
            end
        else
            item:add(F.unknown_field, tvb(e.start, e.size)):append_text(
                " (field " .. e.num .. ")")
        end
    end
    if printable(value) then
        item:set_text(string.format("User metadata: %s = \"%s\"", key, value))
    else
        item:set_text(string.format("User metadata: %s = %d bytes", key,
            #value))
    end
end

-- RequestMeta {method = 1, timeout_us = 2, metadata = 3}: the method.
local function dissect_request_meta(tvb, off, len, tree)
    local item = tree:add(F.meta, tvb(off, len))
    item:set_text("RequestMeta (" .. len .. " bytes)")
    local fields, why = pb_fields(tvb, off, len)
    if not fields then
        item:add_proto_expert_info(E.bad_meta, "RequestMeta: " .. why)
        return nil
    end
    local method = ""
    local timeout_seen = false
    for _, f in ipairs(fields) do
        local r = tvb(f.start, f.size)
        if f.num == 1 and f.wt == 2 then
            method = text_of(tvb, f.data, f.data_len)
            item:add(F.method, r, method)
        elseif f.num == 2 and f.wt == 0 then
            timeout_seen = true
            local t = item:add(F.timeout_us, r, f.value)
            if f.value == UInt64(0) then
                t:append_text(" (no deadline)")
            end
        elseif f.num == 3 and f.wt == 2 then
            add_entry(tvb, item, f)
        else
            item:add(F.unknown_field, r):append_text(" (field " .. f.num .. ")")
        end
    end
    if not timeout_seen then
        item:add(F.timeout_us, UInt64(0)):append_text(" (no deadline)")
            :set_generated()
    end
    return method
end

-- ResponseMeta {status = 1, message = 2, metadata = 3}: the status code.
local function dissect_response_meta(tvb, off, len, tree, anchor)
    local item
    if len > 0 then
        item = tree:add(F.meta, tvb(off, len))
        item:set_text("ResponseMeta (" .. len .. " bytes)")
    else
        item = tree:add(F.meta, anchor)
        item:set_text("ResponseMeta (empty: status OK)")
        item:set_generated()
    end
    local fields, why = pb_fields(tvb, off, len)
    if not fields then
        item:add_proto_expert_info(E.bad_meta, "ResponseMeta: " .. why)
        return nil
    end
    local status, status_range, message = 0, anchor, nil
    for _, f in ipairs(fields) do
        local r = tvb(f.start, f.size)
        if f.num == 1 and f.wt == 0 then
            -- a uint32: only the low 32 bits count
            status = f.value:band(UInt64(0xffffffff)):tonumber()
            status_range = r
        elseif f.num == 2 and f.wt == 2 then
            message = { r, text_of(tvb, f.data, f.data_len) }
        elseif f.num == 3 and f.wt == 2 then
            add_entry(tvb, item, f)
        else
            item:add(F.unknown_field, r):append_text(" (field " .. f.num .. ")")
        end
    end
    local s = item:add(F.status, status_range, status)
    local n = item:add(F.status_name, status_range, status_name(status))
    if status_range == anchor then
        s:set_generated()
        n:set_generated()
    end
    if message then
        item:add(F.message, message[1], message[2])
    end
    if status ~= 0 then
        s:add_proto_expert_info(E.not_ok, "status " .. status_name(status) ..
            (message and (": " .. message[2]) or ""))
    end
    return status, message and message[2]
end

-- ------------------------------------------------------------ payloads

local protobuf = Dissector.get("protobuf")

local function dissect_payload(tvb, off, len, pinfo, tree, msg_type)
    if len == 0 then
        return
    end
    local item = tree:add(F.payload, tvb(off, len))
    if msg_type and protobuf then
        item:add(F.payload_type, tvb(off, len), msg_type):set_generated()
        pinfo.private["pb_msg_type"] = "message," .. msg_type
        pcall(Dissector.call, protobuf, tvb(off, len):tvb(), pinfo, tree)
        pinfo.private["pb_msg_type"] = nil
    end
end

-- -------------------------------------------------------------- frames

local function info(pinfo, text)
    local cur = tostring(pinfo.cols.info)
    if cur == "" then
        pinfo.cols.info:set(text)
    else
        pinfo.cols.info:append(", " .. text)
    end
end

local function dissect_preface(tvb, pinfo, tree)
    local t = tree:add(rawrpc, tvb(0, PREFACE_SIZE))
    t:set_text("rawrpc preface, version " .. tvb(8, 2):uint())
    t:add(F.magic, tvb(0, 8))
    t:add(F.version, tvb(8, 2))
    t:add(F.reserved, tvb(10, 2))
    info(pinfo, "PREFACE v" .. tvb(8, 2):uint())
    return PREFACE_SIZE
end

local function dissect_settings(tvb, body, blen, t, pinfo)
    local parts = {}
    local off = body
    while off + 6 <= body + blen do
        local id, value = tvb(off, 2):uint(), tvb(off + 2, 4):uint()
        local name = SETTING_NAMES[id] or ("UNKNOWN_" .. id)
        local s = t:add(F.setting, tvb(off, 6))
        s:set_text(string.format("Setting: %s = %d", name, value))
        s:add(F.setting_id, tvb(off, 2))
        s:add(F.setting_name, tvb(off, 2), name):set_generated()
        s:add(F.setting_value, tvb(off + 2, 4))
        parts[#parts + 1] = name .. "=" .. value
        off = off + 6
    end
    if off ~= body + blen then
        t:add_proto_expert_info(E.malformed,
            "SETTINGS body is not a multiple of 6 bytes")
    end
    return table.concat(parts, " ")
end

local function dissect_frame(tvb, pinfo, tree)
    local length = tvb(0, 4):uint()
    local ftype = tvb(4, 1):uint()
    local meta_len = tvb(6, 2):uint()
    local call_id = tvb(8, 4):uint()
    local name = type_name(ftype)
    local t = tree:add(rawrpc, tvb(0, HEADER_SIZE + length))
    local summary = name
    if call_id ~= 0 then
        summary = summary .. " call " .. call_id
    end
    t:set_text("rawrpc " .. summary)

    t:add(F.length, tvb(0, 4))
    local ti = t:add(F.type, tvb(4, 1))
    t:add(F.type_name, tvb(4, 1), name):set_generated()
    t:add(F.flags, tvb(5, 1))
    t:add(F.meta_len, tvb(6, 2))
    t:add(F.call_id, tvb(8, 4))

    local body = HEADER_SIZE
    local detail

    if ftype == T_SETTINGS then
        detail = dissect_settings(tvb, body, length, t, pinfo)
    elseif ftype == T_REQUEST or ftype == T_RESPONSE then
        if meta_len > length then
            t:add_proto_expert_info(E.malformed, "meta_len > length")
            meta_len = length
        end
        local rec = call_record(pinfo, call_id)
        local now = pinfo.rel_ts
        local method, msg_types
        if ftype == T_REQUEST then
            method = dissect_request_meta(tvb, body, meta_len, t)
            detail = method
            if rec and not pinfo.visited and not rec.req then
                rec.req, rec.req_ts, rec.method = pinfo.number, now, method
            end
            if rec and rec.resp then
                t:add(F.response_in, rec.resp):set_generated()
            end
            msg_types = method and payload_types[method]
            dissect_payload(tvb, body + meta_len, length - meta_len, pinfo,
                t, msg_types and msg_types[1])
        else
            local status, message = dissect_response_meta(tvb, body,
                meta_len, t, tvb(6, 2))
            if status then
                detail = status_name(status)
                if message and message ~= "" then
                    detail = detail .. " \"" .. message .. "\""
                end
            end
            if rec and not pinfo.visited and not rec.resp then
                rec.resp, rec.resp_ts = pinfo.number, now
            end
            if rec and rec.req then
                method = rec.method
                if method then
                    t:add(F.method, method):set_generated()
                    detail = method .. " " .. (detail or "")
                end
                t:add(F.request_in, rec.req):set_generated()
                if rec.resp == pinfo.number then
                    t:add(F.time, nstime_of(rec.resp_ts - rec.req_ts))
                        :set_generated()
                end
            end
            msg_types = method and payload_types[method]
            dissect_payload(tvb, body + meta_len, length - meta_len, pinfo,
                t, msg_types and msg_types[2])
        end
    elseif ftype == T_CANCEL then
        local rec = call_record(pinfo, call_id)
        if rec and rec.req then
            if rec.method then
                t:add(F.method, rec.method):set_generated()
                detail = rec.method
            end
            t:add(F.request_in, rec.req):set_generated()
        end
        if length ~= 0 then
            t:add_proto_expert_info(E.malformed, "CANCEL with a body")
        end
    elseif ftype == T_PING or ftype == T_PONG then
        if length > 0 then
            t:add(F.ping_data, tvb(body, length))
            detail = tostring(tvb(body, length):bytes())
        end
        if length ~= 8 then
            t:add_proto_expert_info(E.malformed, name .. " body is not 8 bytes")
        end
    elseif ftype == T_GOAWAY then
        if length < 8 then
            t:add_proto_expert_info(E.malformed, "GOAWAY body under 8 bytes")
        else
            local code = tvb(body + 4, 4):uint()
            t:add(F.goaway_last, tvb(body, 4))
            local c = t:add(F.goaway_code, tvb(body + 4, 4))
            t:add(F.goaway_code_name, tvb(body + 4, 4), goaway_name(code))
                :set_generated()
            local message = text_of(tvb, body + 8, length - 8)
            if length > 8 then
                t:add(F.goaway_message, tvb(body + 8, length - 8), message)
            end
            detail = string.format("last %d %s", tvb(body, 4):uint(),
                goaway_name(code))
            if message ~= "" then
                detail = detail .. " \"" .. message .. "\""
            end
            if code ~= 0 then
                c:add_proto_expert_info(E.goaway_error, goaway_name(code))
            end
        end
    else
        if ftype >= 0x80 then
            ti:add_proto_expert_info(E.extension)
        else
            ti:add_proto_expert_info(E.reserved_type)
        end
        if length > 0 then
            t:add(F.body, tvb(body, length))
        end
    end

    if detail and detail ~= "" then
        summary = summary .. " " .. detail
        t:append_text(": " .. detail)
    end
    info(pinfo, summary)
    return HEADER_SIZE + length
end

-- One PDU: the preface, or a frame.
local function dissect_pdu(tvb, pinfo, tree)
    pinfo.cols.protocol = "rawrpc"
    if tvb:len() >= PREFACE_SIZE and tvb:raw(0, 8) == MAGIC then
        return dissect_preface(tvb, pinfo, tree)
    end
    return dissect_frame(tvb, pinfo, tree)
end

-- The size of the PDU at off, from its first 12 bytes.  A frame whose
-- length field read 0x89525250 would be over 2 GiB, so the magic cannot
-- be mistaken for a frame header.
local function pdu_len(tvb, pinfo, off)
    if tvb:raw(off, 8) == MAGIC then
        return PREFACE_SIZE
    end
    return math.min(HEADER_SIZE + tvb(off, 4):uint(), 0xffffffff)
end

function rawrpc.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol = "rawrpc"
    pinfo.cols.info:clear()
    dissect_tcp_pdus(tvb, tree, HEADER_SIZE, pdu_len, dissect_pdu,
        rawrpc.prefs.desegment)
    return tvb:len()
end

-- --------------------------------------------------------- heuristic

local tcp_seq_field = Field.new("tcp.seq")
local tcp_seq_raw_field = Field.new("tcp.seq_raw")

-- The magic at the start of a TCP stream, on any port: the conversation
-- (both directions) is rawrpc from then on.
local function heuristic(tvb, pinfo, tree)
    if tvb:len() < 8 or tvb:raw(0, 8) ~= MAGIC then
        return false
    end
    -- With relative sequence numbers, the stream's first byte is seq 1.
    local seq, raw = tcp_seq_field(), tcp_seq_raw_field()
    if seq and raw and seq.value ~= raw.value and seq.value ~= 1 then
        return false
    end
    pinfo.conversation = rawrpc
    rawrpc.dissector(tvb, pinfo, tree)
    return true
end

rawrpc:register_heuristic("tcp", heuristic)
DissectorTable.get("tcp.port"):add_for_decode_as(rawrpc)
