<?php
// WS-Security UsernameToken from PHP's SoapClient: php-soap has no WS-Security, so PHP
// developers write the wsse:Security header themselves and pass it as raw XML
// (a SoapVar of XSD_ANYXML inside a SoapHeader). The body's username and password
// stay empty: the header carries them.
//
//   php php_wssecurity.php 'http://127.0.0.1:8080/soap?wsdl' 306912345678
//
// Prints one line per fact: text_id=..., digest_id=..., timestamp_answered=yes|no,
// replay_fault=..., replay_code=..., wrong_fault=..., wrong_code=...

$wsdl = $argv[1] ?? (getenv('SMSXML_WSDL') ?: 'http://127.0.0.1:8080/soap?wsdl');
$mobile = $argv[2] ?? '306912345678';
$username = getenv('SMSXML_USERNAME') ?: 'demo';
$secret = getenv('SMSXML_PASSWORD') ?: 'demo';  // the password, or the WS-Security secret

const WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
const WSU = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
const PROFILE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0';
const BASE64 = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';

// The header as raw XML. PasswordDigest = base64(sha1(nonce . created . secret)), with
// the raw nonce bytes; Created in UTC. A wsu:Timestamp asks for one in the answer.
function security_header(string $user, string $secret, bool $digest, ?string $nonce = null): SoapHeader
{
    $nonce = $nonce ?? random_bytes(16);
    $created = gmdate('Y-m-d\TH:i:s\Z');
    $expires = gmdate('Y-m-d\TH:i:s\Z', time() + 300);
    $user = htmlspecialchars($user, ENT_XML1);
    if ($digest) {
        $password = base64_encode(sha1($nonce . $created . $secret, true));
        $token = '<wsse:Password Type="' . PROFILE . '#PasswordDigest">' . $password . '</wsse:Password>'
            . '<wsse:Nonce EncodingType="' . BASE64 . '">' . base64_encode($nonce) . '</wsse:Nonce>'
            . '<wsu:Created>' . $created . '</wsu:Created>';
    } else {
        $token = '<wsse:Password Type="' . PROFILE . '#PasswordText">'
            . htmlspecialchars($secret, ENT_XML1) . '</wsse:Password>';
    }
    $xml = '<wsse:Security xmlns:wsse="' . WSSE . '" xmlns:wsu="' . WSU . '"'
        . ' xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" soap:mustUnderstand="1">'
        . '<wsu:Timestamp><wsu:Created>' . $created . '</wsu:Created>'
        . '<wsu:Expires>' . $expires . '</wsu:Expires></wsu:Timestamp>'
        . '<wsse:UsernameToken><wsse:Username>' . $user . '</wsse:Username>' . $token
        . '</wsse:UsernameToken></wsse:Security>';
    return new SoapHeader(WSSE, 'Security', new SoapVar($xml, XSD_ANYXML), true);
}

$client = new SoapClient($wsdl, [
    'exceptions' => true,
    'cache_wsdl' => WSDL_CACHE_NONE,
    'trace' => true,  // only to show the answer's Timestamp below
]);

function send_message(SoapClient $client, string $mobile): string
{
    return $client->send([
        'username' => '',  // empty: the Security header carries the credentials
        'password' => '',
        'from' => 'smsxml',
        'to' => (object) ['recipients' => [$mobile]],
        'message' => 'Hello over WS-Security',
        'coding' => 'UTF-8',
        'flash' => false,
    ])->id;
}

function report_fault(string $name, SoapFault $fault): void
{
    echo "{$name}_fault={$fault->getMessage()}\n";
    echo "{$name}_code={$fault->faultcode}\n";  // e.g. wsse:FailedAuthentication
}

$client->__setSoapHeaders(security_header($username, $secret, false));
echo 'text_id=' . send_message($client, $mobile) . "\n";

$nonce = random_bytes(16);
$client->__setSoapHeaders(security_header($username, $secret, true, $nonce));
echo 'digest_id=' . send_message($client, $mobile) . "\n";
$answered = strpos($client->__getLastResponse(), 'Timestamp') !== false;
echo 'timestamp_answered=' . ($answered ? 'yes' : 'no') . "\n";

try {  // the same nonce again: a replay
    send_message($client, $mobile);
    echo "replay_fault=none\n";
} catch (SoapFault $fault) {
    report_fault('replay', $fault);
}

$client->__setSoapHeaders(security_header($username, 'not-the-secret', true));
try {
    send_message($client, $mobile);
    echo "wrong_fault=none\n";
} catch (SoapFault $fault) {
    report_fault('wrong', $fault);
}
