"""Records tests/data/core_signrawtransactionwithkey.json from a real bitcoind (regtest, no wallet
needed): `PYTHONPATH=. python tests/data/record_core_signrawtransactionwithkey.py` with BITCOIND
naming the binary (contrib/interop/install_bitcoind.sh builds one). Fake prevouts, all given in
prevtxs, so the answers depend on the arguments only."""
import subprocess, json, sys, urllib.request, base64, os, socket, tempfile, atexit
from tests.framework.wait import wait_until_sync
BITCOIND = os.environ.get("BITCOIND", "bitcoind")
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
class Core:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="coreprobe")
        self.port = free_port()
        self.p = subprocess.Popen([BITCOIND, "-regtest", f"-datadir={self.dir}", f"-rpcport={self.port}",
            "-listen=0", "-server", "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", "-printtoconsole=0"])
        atexit.register(self.stop)
        wait_until_sync(self._answers, 30, interval=0.1, message="bitcoind did not answer RPC")

    def _answers(self) -> bool:
        try:
            r = self.call("getblockcount")
        except Exception:
            return False
        return not (isinstance(r, dict) and "__error__" in r)   # -28: still warming up
    def call(self, method, *params):
        cookie = open(os.path.join(self.dir, "regtest", ".cookie")).read()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/", json.dumps({"jsonrpc":"1.0","id":1,"method":method,"params":list(params)}).encode(),
            {"Authorization": "Basic " + base64.b64encode(cookie.encode()).decode(), "Content-Type": "application/json"})
        try:
            r = urllib.request.urlopen(req, timeout=30).read()
        except urllib.error.HTTPError as e:
            r = e.read()
        j = json.loads(r)
        if j.get("error"):
            return {"__error__": j["error"]}
        return j["result"]
    def stop(self):
        if self.p.poll() is None:
            self.p.terminate(); self.p.wait(10)
from tinynode.params import REGTEST as P
from tinynode.primitives.keys import PrivateKey, taproot_tweak_pubkey
from tinynode.primitives.address import encode_wif, witness_script, p2sh_script, p2pkh_script
from tinynode.primitives.hashes import hash160
from tinynode.primitives.tx import Tx, TxIn, TxOut, OutPoint
c = Core()
K = PrivateKey(bytes([1])*32); K2 = PrivateKey(bytes([2])*32); K3 = PrivateKey(bytes([3])*32)
tr_spk = witness_script(1, taproot_tweak_pubkey(K.xonly_public_key, None)[0])
wpkh_spk = witness_script(0, hash160(K2.public_key.sec))
redeem = witness_script(0, hash160(K3.public_key.sec))
sh_spk = p2sh_script(hash160(redeem))
pkh_spk = p2pkh_script(hash160(K3.public_key.sec))
t1, t2, t3 = "11"*32, "22"*32, "33"*32
def mk(*ins):
    return Tx(2, tuple(TxIn(OutPoint(bytes.fromhex(t)[::-1], n), b"", 0xfffffffd) for t, n in ins),
              (TxOut(40000, wpkh_spk),), 0).raw.hex()
wif = lambda k: encode_wif(k.secret, True, P)
tw = K.taproot_tweaked(None)
hx = mk((t1, 0), (t2, 1))
pv = [{"txid": t1, "vout": 0, "scriptPubKey": tr_spk.hex(), "amount": 0.001},
      {"txid": t2, "vout": 1, "scriptPubKey": wpkh_spk.hex(), "amount": 0.002}]
RES = []
class Rec:
    def call(self, method, *params):
        r = c.call(method, *params)
        RES.append({"name": None, "method": method, "params": list(params),
                    **({"error": r["__error__"]} if isinstance(r, dict) and "__error__" in r else {"result": r})})
        return r
rec = Rec()
def show(name, r):
    RES[-1]["name"] = name
show("A internal key", rec.call("signrawtransactionwithkey", hx, [wif(K), wif(K2)], pv))
show("B tweaked key", rec.call("signrawtransactionwithkey", hx, [wif(tw), wif(K2)], pv))
show("B2 tweaked key ALL", rec.call("signrawtransactionwithkey", hx, [wif(tw), wif(K2)], pv, "ALL"))
pv_noamt = [dict(pv[0]), pv[1]]; del pv_noamt[0]["amount"]
show("C tr no amount", rec.call("signrawtransactionwithkey", hx, [wif(tw), wif(K2)], pv_noamt))
pv_noamt2 = [pv[0], dict(pv[1])]; del pv_noamt2[1]["amount"]
show("C2 wpkh no amount", rec.call("signrawtransactionwithkey", hx, [wif(tw), wif(K2)], pv_noamt2))
show("D input1 unknown", rec.call("signrawtransactionwithkey", hx, [wif(tw), wif(K2)], pv[:1]))
show("D2 input0 unknown", rec.call("signrawtransactionwithkey", hx, [wif(tw), wif(K2)], pv[1:]))
show("F bad sighash", rec.call("signrawtransactionwithkey", hx, [wif(tw), wif(K2)], pv, "FOO"))
show("H no keys", rec.call("signrawtransactionwithkey", hx, [], pv))
hx3 = mk((t3, 0))
show("G sh-wpkh no redeem", rec.call("signrawtransactionwithkey", hx3, [wif(K3)], [{"txid": t3, "vout": 0, "scriptPubKey": sh_spk.hex(), "amount": 0.003}]))
show("G2 sh-wpkh redeem", rec.call("signrawtransactionwithkey", hx3, [wif(K3)], [{"txid": t3, "vout": 0, "scriptPubKey": sh_spk.hex(), "amount": 0.003, "redeemScript": redeem.hex()}]))
show("G3 sh-wpkh redeem nokey", rec.call("signrawtransactionwithkey", hx3, [], [{"txid": t3, "vout": 0, "scriptPubKey": sh_spk.hex(), "amount": 0.003, "redeemScript": redeem.hex()}]))
show("I pkh nokey", rec.call("signrawtransactionwithkey", hx3, [], [{"txid": t3, "vout": 0, "scriptPubKey": pkh_spk.hex(), "amount": 0.003}]))
show("I2 pkh no amount", rec.call("signrawtransactionwithkey", hx3, [wif(K3)], [{"txid": t3, "vout": 0, "scriptPubKey": pkh_spk.hex()}]))
hx4 = Tx(2, (TxIn(OutPoint(bytes.fromhex(t1)[::-1], 0), b"", 1), TxIn(OutPoint(bytes.fromhex(t2)[::-1], 1), b"", 1)), (TxOut(40000, wpkh_spk),), 0).raw.hex()
show("J single no output for input1", rec.call("signrawtransactionwithkey", hx4, [wif(tw), wif(K2)], pv, "SINGLE"))
show("K tr nokey but all known", rec.call("signrawtransactionwithkey", hx, [wif(K2)], pv))

show("L tr NONE|ANYONECANPAY", rec.call("signrawtransactionwithkey", hx, [wif(tw), wif(K2)], pv, "NONE|ANYONECANPAY"))
show("L2 explicit DEFAULT", rec.call("signrawtransactionwithkey", hx, [wif(tw), wif(K2)], pv, "DEFAULT"))
show("M prevtx not object", rec.call("signrawtransactionwithkey", hx, [wif(tw)], [1]))
show("M2 prevtx missing vout", rec.call("signrawtransactionwithkey", hx, [wif(tw)], [{"txid": t1, "scriptPubKey": "51"}]))
show("M3 prevtx negative vout", rec.call("signrawtransactionwithkey", hx, [wif(tw)], [{"txid": t1, "vout": -1, "scriptPubKey": "51"}]))
show("M4 prevtx bad spk hex", rec.call("signrawtransactionwithkey", hx, [wif(tw)], [{"txid": t1, "vout": 0, "scriptPubKey": "zz"}]))
show("M5 prevtx vout string", rec.call("signrawtransactionwithkey", hx, [wif(tw)], [{"txid": t1, "vout": "0", "scriptPubKey": "51"}]))
show("M6 bad key", rec.call("signrawtransactionwithkey", hx, ["notakey"], pv))
pk_spk = bytes([33]) + K3.public_key.sec + b"\xac"
show("N p2pk", rec.call("signrawtransactionwithkey", hx3, [wif(K3)], [{"txid": t3, "vout": 0, "scriptPubKey": pk_spk.hex()}]))
show("N2 redeem mismatch", rec.call("signrawtransactionwithkey", hx3, [wif(K3)], [{"txid": t3, "vout": 0, "scriptPubKey": sh_spk.hex(), "amount": 0.003, "redeemScript": "51"}]))
Ku = PrivateKey(bytes([4])*32, False)
wpkh_u = witness_script(0, hash160(Ku.public_key.sec))
show("N3 uncompressed wpkh", rec.call("signrawtransactionwithkey", hx3, [encode_wif(Ku.secret, False, P)], [{"txid": t3, "vout": 0, "scriptPubKey": wpkh_u.hex(), "amount": 0.003}]))
hx5 = mk((t1, 0), (t2, 1), (t3, 0))
pv5 = pv + [{"txid": t3, "vout": 0, "scriptPubKey": sh_spk.hex(), "amount": 0.003, "redeemScript": redeem.hex()}]
show("O three types SINGLE|ANYONECANPAY", rec.call("signrawtransactionwithkey", hx5, [wif(tw), wif(K2), wif(K3)], pv5, "SINGLE|ANYONECANPAY"))
show("O2 three types", rec.call("signrawtransactionwithkey", hx5, [wif(tw), wif(K2), wif(K3)], pv5))
signed_b = RES[[r["name"] for r in RES].index("B tweaked key")]["result"]["hex"]
show("P signed tr, other prevout unknown", rec.call("signrawtransactionwithkey", signed_b, [], pv[:1]))
show("P2 signed tr, all known", rec.call("signrawtransactionwithkey", signed_b, [], pv))
import subprocess
ver = c.call("getnetworkinfo")["subversion"]
json.dump({"source": f"bitcoind {ver} regtest, signrawtransactionwithkey, recorded by tests/data/record_core_signrawtransactionwithkey.py", "cases": RES}, open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "core_signrawtransactionwithkey.json"), "w"), indent=1)
