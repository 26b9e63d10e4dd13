"""The APIM: specification, centring, design, fitting and the fitted result."""
